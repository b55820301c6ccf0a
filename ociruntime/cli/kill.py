"""ociruntime kill [--all] ID [SIGNAL]"""
FLAGS = {"all": ("all", "bool"), "a": ("all", "bool")}
ARGS = (1, 2)


def run(ctx, opts, args):
    from ociruntime.container.kill import kill
    kill(ctx, args[0], args[1] if len(args) > 1 else "SIGTERM", all_procs=opts.get("all", False))
    return 0
