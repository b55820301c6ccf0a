"""ociruntime run [create options] [--detach] [--keep] ID"""
from ociruntime.cli import create as _create_cli
from ociruntime.cli import need_id

USAGE = "usage: ociruntime run [command options] <container-id>\n"
FLAGS = dict(_create_cli.FLAGS, **{"--detach": ("detach", "bool"), "-d": ("detach", "bool"),
                                    "--keep": ("keep", "bool"),
                                    "--no-subreaper": ("no_subreaper", "bool")})


def run(ctx, opts, args):
    from ociruntime.container.run import run as run_container
    cid = need_id(args, USAGE)
    return run_container(ctx, cid, opts.get("bundle"), detach=opts.get("detach", False),
                         keep=opts.get("keep", False), pid_file=opts.get("pid_file"),
                         console_socket=opts.get("console_socket"),
                         no_pivot=opts.get("no_pivot", False), preserve_fds=opts.get("preserve_fds", 0),
                         no_new_keyring=opts.get("no_new_keyring", False))
