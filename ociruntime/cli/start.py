"""ociruntime start ID"""
FLAGS = {}
ARGS = (1, 1)


def run(ctx, opts, args):
    from ociruntime.container.start import start
    start(ctx, args[0])
    return 0
