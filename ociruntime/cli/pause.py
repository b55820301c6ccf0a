"""ociruntime pause ID"""
FLAGS = {}
ARGS = (1, 1)


def run(ctx, opts, args):
    from ociruntime.container.pause import pause
    pause(ctx, args[0])
    return 0
