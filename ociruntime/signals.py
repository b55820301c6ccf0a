"""Signal names and numbers as runc's `kill` accepts them: 9, KILL, SIGKILL (any case); 0 sends
none and only checks that the process is there (a liveness probe)."""
import _signal as signal  # signal's C half (ociruntime/__init__.py says why)

from ociruntime.errors import OCIError


def parse_signal(s):
    s = str(s).strip()
    if s.isdigit():
        n = int(s)
        if 0 <= n < 65:
            return n
        raise OCIError('invalid signal "%s"' % s)
    name = s.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    if name.startswith("SIGRTMIN+") or name.startswith("SIGRTMAX-"):
        base, _, off = name[3:].partition("+" if "+" in name else "-")
        try:
            n = signal.SIGRTMIN + int(off) if base == "RTMIN" else signal.SIGRTMAX - int(off)
            if signal.SIGRTMIN <= n <= signal.SIGRTMAX:
                return n
        except ValueError:
            pass
    # signal.Signals' members: the SIG* names of _signal but the SIG_* ones (SIG_DFL, SIG_BLOCK...)
    sig = getattr(signal, name, None) if not name.startswith("SIG_") else None
    if sig.__class__ is not int:
        raise OCIError('unknown signal "%s"' % s)
    return int(sig)
