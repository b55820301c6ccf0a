"""ociruntime state ID: the container's state as JSON."""
from ociruntime.cli import need_id, write_ascii

USAGE = "usage: ociruntime state <container-id>\n"
FLAGS = {}


def run(ctx, opts, args):
    from ociruntime import jsonio
    from ociruntime.container.state import get
    write_ascii(jsonio.dumps(get(ctx.root, need_id(args, USAGE)), indent=2) + "\n")
    return 0
