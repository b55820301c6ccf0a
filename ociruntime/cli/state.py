"""ociruntime state ID: the container's state as JSON."""
import sys

from ociruntime.cli import need_id

USAGE = "usage: ociruntime state <container-id>\n"
FLAGS = {}


def run(ctx, opts, args):
    from ociruntime import jsonio
    from ociruntime.container.state import get
    sys.stdout.write(jsonio.dumps(get(ctx.root, need_id(args, USAGE)), indent=2) + "\n")
    return 0
