"""ociruntime create [--bundle DIR] [--pid-file F] [--console-socket S] [--no-pivot] [--preserve-fds N] ID"""
FLAGS = {
    "bundle": ("bundle", "str"), "b": ("bundle", "str"),
    "console-socket": ("console_socket", "str"),
    "pid-file": ("pid_file", "str"),
    "no-pivot": ("no_pivot", "bool"),
    "no-new-keyring": ("no_new_keyring", "bool"),
    "preserve-fds": ("preserve_fds", "int"),  # (runc: an int, below 0 is 0)
}
ARGS = (1, 1)


def run(ctx, opts, args):
    from ociruntime.container.create import create
    create(ctx, args[0], opts.get("bundle"), pid_file=opts.get("pid_file"),
           console_socket=opts.get("console_socket"), no_pivot=opts.get("no_pivot", False),
           preserve_fds=max(0, opts.get("preserve_fds", 0)), no_new_keyring=opts.get("no_new_keyring", False))
    return 0
