"""What a waiting init drops (container/create.py start_shed_scan): the shim's scan on a thread of
its own (cext/shim.c, which create starts before the fork) finds every read-only file mapping
without a page of its own, and only those."""
import errno
import os

import pytest

from ociruntime import _sys as S


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


def test_the_scan_finds_the_mappings_without_pages_of_their_own():
    S.shed_start()
    threaded = S.shed_wait()
    maps = _file_mappings()
    # a page of its own: swapped, or present and not the file's (relocated, then made read-only:
    # RELRO); a mapping with one is kept, every other is dropped
    own = lambda flags: any((b & 0x40) or (b & 0xA0) == 0x80 for b in flags)  # noqa: E731
    assert sorted(threaded) == sorted(m for m in maps if not own(maps[m]))
    assert threaded and len(threaded) < len(maps)  # some dropped, some (libc's RELRO) kept


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
