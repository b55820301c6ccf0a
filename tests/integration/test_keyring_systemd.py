"""Session keyring (--no-new-keyring) and --systemd-cgroup on a host without systemd."""
import os
import re

import pytest


def _keys(runtime, b, *extra):
    """(container id, /proc/keys as the container reads it)."""
    # /proc/keys lists the keys the process possesses or may view; it is masked in the default config
    b.config["linux"]["maskedPaths"] = [p for p in b.config["linux"]["maskedPaths"] if p != "/proc/keys"]
    b.config["process"]["args"] = ["cat", "/proc/keys"]
    cid = runtime.new_id()
    r = runtime.run("run", "--bundle", b, *extra, cid)
    assert r.rc == 0, r.err
    return cid, r.out


def test_new_session_keyring(runtime, bundle):
    cid, out = _keys(runtime, bundle())
    assert re.search(r"keyring\s+_ses\.%s:" % re.escape(cid), out), out


def test_no_new_keyring(runtime, bundle):
    # its own name only: another container's keyring may still be listed until the kernel's key
    # garbage collector has run (it is root's, so root may view it)
    cid, out = _keys(runtime, bundle(), "--no-new-keyring")
    assert "_ses.%s:" % cid not in out, out


@pytest.mark.skipif(os.path.isdir("/run/systemd/system"), reason="systemd is PID 1 on this host")
def test_systemd_cgroup_refused_without_systemd(runtime, bundle):
    b = bundle("true")
    cid = runtime.new_id()
    r = runtime.run("--systemd-cgroup", "run", "--bundle", b, cid)
    runtime.refused(r)
    assert runtime.status(cid) is None          # nothing was created
    if runtime.name == "ociruntime":
        assert r.err.count("\n") == 1 and "systemd is not running" in r.err
