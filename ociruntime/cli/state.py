"""ociruntime state ID: the container's state as JSON."""
from ociruntime.cli import write_ascii

FLAGS = {}
ARGS = (1, 1)


def run(ctx, opts, args):
    from ociruntime import jsonio
    from ociruntime.container.state import get
    write_ascii(jsonio.dumps(get(ctx.root, args[0]), indent=2) + "\n")
    return 0
