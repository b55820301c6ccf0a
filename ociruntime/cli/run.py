"""ociruntime run [create options] [--detach] [--keep] ID"""
from ociruntime.cli import create as _create_cli

FLAGS = dict(_create_cli.FLAGS, **{"detach": ("detach", "bool"), "d": ("detach", "bool"), "keep": ("keep", "bool"),
                                    "no-subreaper": ("no_subreaper", "bool")})
ARGS = (1, 1)


def run(ctx, opts, args):
    from ociruntime.container.run import run as run_container
    status = run_container(ctx, args[0], opts.get("bundle"), detach=opts.get("detach", False),
                           keep=opts.get("keep", False), pid_file=opts.get("pid_file"),
                           console_socket=opts.get("console_socket"),
                           no_pivot=opts.get("no_pivot", False), preserve_fds=max(0, opts.get("preserve_fds", 0)),
                           no_new_keyring=opts.get("no_new_keyring", False))
    return 0 if opts.get("detach") else status
