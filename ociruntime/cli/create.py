"""ociruntime create [--bundle DIR] [--pid-file F] [--console-socket S] [--no-pivot] [--preserve-fds N] ID"""
from ociruntime.cli import need_id

USAGE = "usage: ociruntime create [command options] <container-id>\n"
FLAGS = {
    "--bundle": ("bundle", "str"), "-b": ("bundle", "str"),
    "--pid-file": ("pid_file", "str"),
    "--console-socket": ("console_socket", "str"),
    "--no-pivot": ("no_pivot", "bool"),
    "--no-new-keyring": ("no_new_keyring", "bool"),
    "--preserve-fds": ("preserve_fds", "int"),
}


def run(ctx, opts, args):
    from ociruntime.container.create import create
    cid = need_id(args, USAGE)
    create(ctx, cid, opts.get("bundle"), pid_file=opts.get("pid_file"),
           console_socket=opts.get("console_socket"), no_pivot=opts.get("no_pivot", False),
           preserve_fds=opts.get("preserve_fds", 0),
                         no_new_keyring=opts.get("no_new_keyring", False))
    return 0
