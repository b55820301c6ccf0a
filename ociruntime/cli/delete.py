"""ociruntime delete [--force] ID"""
from ociruntime.cli import need_id

USAGE = "usage: ociruntime delete [command options] <container-id>\n"
FLAGS = {"--force": ("force", "bool"), "-f": ("force", "bool")}


def run(ctx, opts, args):
    from ociruntime.container.delete import delete
    delete(ctx, need_id(args, USAGE), force=opts.get("force", False))
    return 0
