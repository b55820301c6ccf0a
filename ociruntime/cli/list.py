"""ociruntime list [--format table|json] [--quiet]"""
import sys

from ociruntime.errors import UsageError

FLAGS = {"format": ("format", "str"), "f": ("format", "str"), "quiet": ("quiet", "bool"), "q": ("quiet", "bool")}
ARGS = (0, 0)


def run(ctx, opts, args):
    from ociruntime.container.state import list_all
    states = list_all(ctx.root)
    fmt = opts.get("format", "table")
    if opts.get("quiet"):
        sys.stdout.write("".join(s["id"] + "\n" for s in states))
    elif fmt == "json":
        from ociruntime import jsonio
        from ociruntime.cli import write_ascii
        write_ascii((jsonio.dumps(states) if states else "null") + "\n")
    elif fmt == "table":
        rows = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")]
        rows += [(s["id"], str(s["pid"]), s["status"], s["bundle"], s["created"], s["owner"])
                 for s in states]
        widths = [max(12, max(len(r[i]) for r in rows) + 3) for i in range(5)]
        for r in rows:
            sys.stdout.write("".join(c.ljust(w) for c, w in zip(r, widths)) + r[5] + "\n")
    else:
        raise UsageError("invalid format option")
    return 0
