"""What a waiting init drops (process/init.py _sheddable): the shim's scan on a thread of its own
(cext/shim.c, which create starts before the fork) finds what the Python one finds."""
import errno
import os

import pytest

from ociruntime import _sys as S
from ociruntime.process.init import _sheddable


def _file_mappings():
    """{(start, length): page flags bytes} of this process's read-only file mappings."""
    out = {}
    fd = os.open("/proc/self/pagemap", os.O_RDONLY)
    try:
        with open("/proc/self/maps", "rb") as f:
            for line in f:
                parts = line.split(None, 5)
                if len(parts) == 6 and parts[1] in (b"r-xp", b"r--p") and parts[5].startswith(b"/"):
                    lo, hi = (int(x, 16) for x in parts[0].split(b"-"))
                    out[(lo, hi - lo)] = os.pread(fd, (hi - lo) >> 12 << 3, (lo >> 12) << 3)[7::8]
    finally:
        os.close(fd)
    return out


def test_the_threads_scan_is_the_python_one():
    S.shed_start()
    threaded = S.shed_wait()
    assert threaded == _sheddable()
    maps = _file_mappings()
    kept = set(maps) - set(threaded)
    assert set(threaded) <= set(maps) and threaded
    # what is kept holds a page of its own (relocated, then made read-only: RELRO), what is
    # dropped none
    assert kept
    own = lambda flags: any((b & 0x40) or (b & 0xA0) == 0x80 for b in flags)  # noqa: E731
    assert all(own(maps[m]) for m in kept)
    assert not any(own(maps[m]) for m in threaded)


def test_scans_after_one_another():
    S.shed_start()
    first = S.shed_wait()
    S.shed_start()
    assert S.shed_wait() == first


def test_a_wait_without_a_start_is_an_error():
    for wait in (S.shed_wait, S.netns_wait):
        with pytest.raises(OSError) as e:
            wait()
        assert e.value.errno == errno.ECHILD
