"""ociruntime ps [--format table|json] ID [ps options]"""
import subprocess
import sys

from ociruntime.cli import write_ascii
from ociruntime.errors import OCIError

FLAGS = {"format": ("format", "str"), "f": ("format", "str")}
ARGS = (1, None)
REORDER = False  # what follows the id is ps(1)'s (runc: SkipArgReorder)


def run(ctx, opts, args):
    from ociruntime.container.pause import pids
    found = pids(ctx, args[0])
    fmt = opts.get("format", "table")
    if fmt == "json":
        from ociruntime import jsonio
        write_ascii(jsonio.dumps(found or None) + "\n")  # runc: null when there are none
        return 0
    if fmt != "table":
        raise OCIError("invalid format option")
    ps_args = args[1:] or ["-ef"]
    try:
        out = subprocess.run(["ps"] + ps_args, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        raise OCIError("ps: %s" % e) from None
    lines = out.splitlines()
    if not lines:
        return 0
    header = lines[0]
    try:
        col = header.split().index("PID")
    except ValueError:
        raise OCIError("couldn't find PID field in ps output") from None
    keep = set(found)
    sys.stdout.write(header + "\n")
    for line in lines[1:]:
        f = line.split()
        if len(f) > col and f[col].isdigit() and int(f[col]) in keep:
            sys.stdout.write(line + "\n")
    sys.stdout.flush()
    return 0
