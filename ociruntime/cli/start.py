"""ociruntime start ID"""
from ociruntime.cli import need_id

USAGE = "usage: ociruntime start <container-id>\n"
FLAGS = {}


def run(ctx, opts, args):
    from ociruntime.container.start import start
    start(ctx, need_id(args, USAGE))
    return 0
