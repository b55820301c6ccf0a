"""ociruntime delete [--force] ID"""
FLAGS = {"force": ("force", "bool"), "f": ("force", "bool")}
ARGS = (1, 1)


def run(ctx, opts, args):
    from ociruntime.container.delete import delete
    delete(ctx, args[0], force=opts.get("force", False))
    return 0
