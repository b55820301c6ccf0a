"""ociruntime pause ID"""
from ociruntime.cli import need_id

USAGE = "usage: ociruntime pause <container-id>\n"
FLAGS = {}


def run(ctx, opts, args):
    from ociruntime.container.pause import pause
    pause(ctx, need_id(args, USAGE))
    return 0
