"""Side by side with runc: the same bundle must look the same from inside, and the same commands
must print the same things.  Trivially true when the runtime under test is runc itself."""

import json
import os
import re

import pytest

from helpers import LONG_RUNNING, parse_mountinfo

pytestmark = pytest.mark.needs_runc

PROBES = {
    "env": "env | sort",
    "ids": "id; umask; hostname; pwd",
    "status": "grep -E '^(Cap|NoNewPrivs|Seccomp|Uid|Gid|Groups|NSpid)' /proc/self/status",
    "limits": "ulimit -a",
    "dev": "find /dev | sort | while read f; do stat -c '%N %F %a %u %g %t %T' $f; done",
    "fds": "ls /proc/self/fd",
    "net": "ip -o link; ip -o addr",
    "sysctl": "cat /proc/sys/kernel/hostname /proc/sys/net/ipv4/ip_forward",
}


def both(runtime, runc, b):
    ours = runtime.run_container(b)
    theirs = runc.run_container(b)
    return ours, theirs


@pytest.mark.parametrize("probe", sorted(PROBES))
def test_same_view_inside(runtime, runc, bundle, probe):
    b = bundle("sh", "-c", PROBES[probe])
    ours, theirs = both(runtime, runc, b)
    assert (ours.rc, ours.out) == (theirs.rc, theirs.out)


@pytest.mark.parametrize("user", [{"uid": 1000, "gid": 1000, "additionalGids": [5]},
                                  {"uid": 65534, "gid": 65534, "umask": 0o027}])
def test_same_view_as_other_user(runtime, runc, bundle, user):
    b = bundle("sh", "-c", PROBES["env"] + ";" + PROBES["ids"] + ";" + PROBES["status"])
    b.config["process"]["user"] = user
    ours, theirs = both(runtime, runc, b)
    assert (ours.rc, ours.out) == (theirs.rc, theirs.out)


def normalized_mounts(text, cid):
    out = []
    for m in parse_mountinfo(text.replace(cid, "ID")):
        out.append((m["mountpoint"], m["root"], m["fstype"], m["source"], sorted(m["options"]),
                    sorted(m["super"]), [re.sub(r":\d+", "", t) for t in m["optional"]]))
    return sorted(out)


def test_same_mounts(runtime, runc, bundle):
    b = bundle("cat", "/proc/self/mountinfo")
    ours = runtime.run("run", "--bundle", b, cid := runtime.new_id(), check=True)
    theirs = runc.run("run", "--bundle", b, rcid := runc.new_id(), check=True)
    assert normalized_mounts(ours.out, cid) == normalized_mounts(theirs.out, rcid)


def test_same_state_shape(runtime, runc, bundle):
    b = bundle(*LONG_RUNNING)
    b.config["annotations"] = {"a": "b"}
    ours = runtime.state(runtime.create(b))
    theirs = runc.state(runc.create(b))
    assert {k: type(v) for k, v in ours.items()} == {k: type(v) for k, v in theirs.items()}
    for k in ("ociVersion", "status", "bundle", "rootfs", "annotations", "owner"):
        assert ours[k] == theirs[k], k
    # RFC3339 with up to nanoseconds, trailing zeros trimmed (Go's RFC3339Nano)
    for st in (ours, theirs):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{0,8}[1-9])?Z", st["created"]), st["created"]


def test_same_list_output_when_empty(runtime, runc):
    for argv in (["list"], ["list", "-q"], ["list", "--format", "json"]):
        assert runtime.run(*argv, check=True).out == runc.run(*argv, check=True).out, argv


def test_same_list_layout(runtime, runc, bundle):
    b = bundle(*LONG_RUNNING)
    cid = runtime.create(b, runtime.new_id("ours"))     # as long as runc's, labelled "runc"
    rcid = runc.create(b)
    assert len(cid) == len(rcid)
    ours = runtime.run("list", check=True).out.splitlines()
    theirs = runc.run("list", check=True).out.splitlines()
    # pids and creation times differ; the columns up to CREATED must line up the same
    cut = theirs[0].index("CREATED")
    assert ours[0][:cut + 7] == theirs[0][:cut + 7]
    assert ours[0].split() == theirs[0].split()
    assert ours[1].index(str(b.path)) == theirs[1].index(str(b.path))


@pytest.mark.parametrize("argv", [["state"], ["list", "--format", "json"], ["ps", "--format", "json"]])
def test_output_to_a_closed_pipe_ends_by_sigpipe(runtime, runc, bundle, argv):
    """JSON output goes out with posix calls (cli.write_ascii); a reader that is gone ends the
    command by SIGPIPE with nothing on stderr, as it ends runc."""
    b = bundle(*LONG_RUNNING)
    results = []
    for rt in (runtime, runc):
        cid = rt.create(b)
        r, w = os.pipe()
        os.close(r)
        try:
            res = rt.run(*argv, *([cid] if argv[0] != "list" else []), stdout=w)
        finally:
            os.close(w)
        results.append((res.rc, res.err))
    assert results[0] == results[1] == (-13, "")


@pytest.mark.parametrize("argv", [["state"], ["delete"], ["kill"], ["start"], ["delete", "--force"]])
def test_same_exit_status_for_unknown_container(runtime, runc, argv):
    assert runtime.run(*argv, runtime.new_id("nope")).rc == runc.run(*argv, runc.new_id("nope")).rc


@pytest.mark.parametrize("extra", [[], ["--rootless"]])
def test_same_spec(runtime, runc, tmp_path, extra):
    (tmp_path / "ours").mkdir()
    (tmp_path / "theirs").mkdir()
    runtime.run("spec", *extra, "--bundle", tmp_path / "ours", check=True)
    runc.run("spec", *extra, "--bundle", tmp_path / "theirs", check=True)
    ours = json.loads((tmp_path / "ours" / "config.json").read_text())
    theirs = json.loads((tmp_path / "theirs" / "config.json").read_text())
    for own in ("ociVersion", "hostname"):          # each runtime names itself and its spec version
        ours.pop(own)
        theirs.pop(own)
    assert ours == theirs


def test_spec_refuses_to_overwrite(runtime, runc, tmp_path):
    (tmp_path / "config.json").write_text("keep")
    r = runtime.run("spec", "--bundle", tmp_path)
    assert r.rc == runc.run("spec", "--bundle", tmp_path).rc != 0
    runtime.refused(r, "config.json")
    assert (tmp_path / "config.json").read_text() == "keep"
