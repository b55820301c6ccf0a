"""process.rlimits -> setrlimit (prlimit64 in the shim: the resource module is a library to load)."""
from ociruntime import _sys as S
from ociruntime.errors import ConfigError, InitError

# what resource.setrlimit said for these (its ValueError), by errno: EINVAL and EPERM, the same on
# every Linux architecture (errno-base.h; the errno module is ~70 us to import)
_TEXT = {22: "current limit exceeds maximum limit", 1: "not allowed to raise maximum limit"}


def parse(rlimits):
    out = []
    for i, r in enumerate(rlimits or ()):
        num = S.rlimit_number(r["type"]) if isinstance(r["type"], str) and "\0" not in r["type"] else None
        if num is None or not r["type"].startswith("RLIMIT_"):
            raise ConfigError('config.json: process.rlimits[%d].type: unknown rlimit "%s"' % (i, r["type"]))
        out.append((r["type"], num, r["soft"], r["hard"]))
    return out


def apply(parsed):
    inf = S.RLIM_INFINITY
    for name, num, soft, hard in parsed:
        soft = inf if soft >= inf else soft
        hard = inf if hard >= inf else hard
        try:
            S.setrlimit(num, soft, hard)
        except (OSError, OverflowError, TypeError) as e:
            err = getattr(e, "errno", 0) or 0
            text = _TEXT.get(err, "" if err else str(e))
            raise InitError("setrlimit %s" % name, 0 if text else err, "", text) from None
