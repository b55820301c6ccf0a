"""process.rlimits -> setrlimit."""
import resource

from ociruntime.errors import ConfigError, InitError


def parse(rlimits):
    out = []
    for i, r in enumerate(rlimits or ()):
        num = getattr(resource, r["type"], None)
        if not isinstance(num, int) or not r["type"].startswith("RLIMIT_"):
            raise ConfigError('config.json: process.rlimits[%d].type: unknown rlimit "%s"' % (i, r["type"]))
        out.append((r["type"], num, r["soft"], r["hard"]))
    return out


def apply(parsed):
    inf = resource.RLIM_INFINITY
    for name, num, soft, hard in parsed:
        soft = inf if soft >= 2 ** 64 - 1 else soft
        hard = inf if hard >= 2 ** 64 - 1 else hard
        try:
            resource.setrlimit(num, (soft, hard))
        except (OSError, ValueError) as e:
            raise InitError("setrlimit %s" % name, getattr(e, "errno", 0) or 0, "",
                            "" if getattr(e, "errno", 0) else str(e)) from None
