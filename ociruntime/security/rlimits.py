"""process.rlimits -> setrlimit (the resource module's prlimit on this process)."""
import resource  # imported with this module: the init applies limits after nothing can be imported

from ociruntime.errors import ConfigError, InitError

# what resource.setrlimit said for these (its ValueError), by errno: EINVAL and EPERM, the same on
# every Linux architecture (errno-base.h)
_TEXT = {22: "current limit exceeds maximum limit", 1: "not allowed to raise maximum limit"}
RLIM_INFINITY = 2 ** 64 - 1


def parse(rlimits):
    out = []
    for i, r in enumerate(rlimits or ()):
        name = r["type"]
        num = getattr(resource, name, None) if isinstance(name, str) and name.startswith("RLIMIT_") else None
        if not isinstance(num, int):
            raise ConfigError('config.json: process.rlimits[%d].type: unknown rlimit "%s"' % (i, name))
        out.append((name, num, r["soft"], r["hard"]))
    return out


def apply(parsed):
    def limit(v):  # the spec's uint64; resource takes RLIM_INFINITY as -1
        return resource.RLIM_INFINITY if v >= RLIM_INFINITY else v
    for name, num, soft, hard in parsed:
        try:
            resource.prlimit(0, num, (limit(soft), limit(hard)))
        except (OSError, ValueError, OverflowError, TypeError) as e:
            err = getattr(e, "errno", 0) or 0
            text = _TEXT.get(err, "" if err else str(e))
            raise InitError("setrlimit %s" % name, 0 if text else err, "", text) from None
