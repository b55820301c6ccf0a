"""ociruntime kill [--all] ID [SIGNAL]"""
from ociruntime.cli import need_id
from ociruntime.errors import UsageError

USAGE = "usage: ociruntime kill [command options] <container-id> [signal]\n"
FLAGS = {"--all": ("all", "bool"), "-a": ("all", "bool")}


def run(ctx, opts, args):
    from ociruntime.container.kill import kill
    from ociruntime.signals import parse_signal
    cid = need_id(args, USAGE, extra_ok=True)
    if len(args) > 2:
        raise UsageError('"kill" requires a maximum of 2 arguments')
    sig = parse_signal(args[1] if len(args) > 1 else "SIGTERM")
    kill(ctx, cid, sig, all_procs=opts.get("all", False))
    return 0
