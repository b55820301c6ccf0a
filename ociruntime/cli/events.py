"""ociruntime events [--stats] [--interval D] ID"""
import re
import sys

from ociruntime.errors import UsageError

FLAGS = {"interval": ("interval", "str"), "stats": ("stats", "bool")}
ARGS = (1, 1)

_UNITS = {"ns": 1e-9, "us": 1e-6, "\u00b5s": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|\u00b5s|ms|s|m|h)")


def parse_duration(text):
    """Go's time.ParseDuration: "5s", "100ms", "1m30s"."""
    pos, total = 0, 0.0
    if text in ("0",):
        return 0.0
    while pos < len(text):
        m = _PART.match(text, pos)
        if not m:
            raise UsageError('invalid value "%s" for flag -interval: parse error' % text)
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if not text:
        raise UsageError('invalid value "" for flag -interval: parse error')
    return total


def run(ctx, opts, args):
    from ociruntime import jsonio
    from ociruntime.container.events import stream
    cid = args[0]
    interval = parse_duration(opts["interval"]) if "interval" in opts else 5.0
    if interval <= 0:
        raise UsageError("duration interval must be greater than 0")

    for event in stream(ctx, cid, interval, bool(opts.get("stats"))):
        sys.stdout.write(jsonio.dumps(event) + "\n")
        sys.stdout.flush()
    return 0
