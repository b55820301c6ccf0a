"""ociruntime resume ID"""
from ociruntime.cli import need_id

USAGE = "usage: ociruntime resume <container-id>\n"
FLAGS = {}


def run(ctx, opts, args):
    from ociruntime.container.pause import resume
    resume(ctx, need_id(args, USAGE))
    return 0
