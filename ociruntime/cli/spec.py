"""ociruntime spec [--bundle DIR] [--rootless]: write a default config.json."""
import os

from ociruntime.errors import OCIError

FLAGS = {"bundle": ("bundle", "str"), "b": ("bundle", "str"), "rootless": ("rootless", "bool")}
ARGS = (0, 0)


def run(ctx, opts, args):
    from ociruntime import jsonio
    from ociruntime.specgen import default_spec
    path = os.path.join(opts.get("bundle") or ".", "config.json")
    if os.path.exists(path):
        raise OCIError("File %s exists. Remove it first" % path)
    with open(path, "w") as f:
        f.write(jsonio.dumps(default_spec(opts.get("rootless", False)), indent="\t") + "\n")
    return 0
