"""The client tests' host guard (clientlib.HostState) finds and undoes what it is meant to; the argv log
parses what the wrapper writes.  Needs root, iptables and iproute2, no client."""

import json
import os
import shutil
import subprocess

import pytest

import helpers

from .clientlib import ArgvLog, make_wrapper, run
from .hoststate import HostState, SharedBaseline


@pytest.fixture
def name(session_token):
    return f"OCI-TEST-{session_token}".upper()


def test_host_state_restores_rules_links_paths_cgroups(name, session_token):
    if not shutil.which("iptables"):
        pytest.skip("iptables not installed")
    link = f"ocih{session_token}"
    cg = f"pids/{helpers.ID_PREFIX}{session_token}-hostguard"
    guard = HostState(watch_links=[link], watch_cgroups=[r"^pids/" + helpers.ID_PREFIX + session_token])
    had_containerd = os.path.exists("/run/containerd")
    marker = f"/run/containerd/{helpers.ID_PREFIX}{session_token}-hostguard"
    try:
        subprocess.run(["iptables", "-w", "-t", "filter", "-N", name], check=True)
        subprocess.run(["iptables", "-w", "-t", "filter", "-A", name, "-s", "10.254.254.0/24", "-j", "RETURN"],
                       check=True)
        subprocess.run(["iptables", "-w", "-t", "filter", "-A", "FORWARD", "-j", name], check=True)
        subprocess.run(["ip", "link", "add", link, "type", "bridge"], check=True)
        os.mkdir(os.path.join(helpers.CGROUP_ROOT, cg))
        os.makedirs(marker)
    finally:
        expected, unexpected = guard.restore(expected_rules=[name, "^nft table"], expected_links=[link])
    text = "\n".join(expected + unexpected)
    assert f"iptables -t filter -A FORWARD -j {name}" in expected
    assert f"iptables -t filter chain {name}" in expected
    assert f"network link {link}" in expected
    assert f"cgroup {helpers.CGROUP_ROOT}/{cg}" in unexpected
    assert any(marker in u or (not had_containerd and "/run/containerd created" in u) for u in unexpected), text
    assert name not in subprocess.run(["iptables", "-w", "-S"], capture_output=True, text=True).stdout
    assert not os.path.exists(f"/sys/class/net/{link}")
    assert not os.path.exists(os.path.join(helpers.CGROUP_ROOT, cg))
    assert not os.path.exists(marker)


def test_argv_log_records_each_invocation(tmp_path):
    log = ArgvLog(str(tmp_path / "argv.log"))
    wrapper = make_wrapper(str(tmp_path / "wrap"), "/bin/echo", log.path)
    assert os.path.basename(wrapper) == "echo"
    r = run([wrapper, "--log-format=json", "--log", "/x y", "create", "--bundle", "b", "id1"])
    assert r.out == "--log-format=json --log /x y create --bundle b id1\n"
    log.mark()
    run([wrapper, "--root", "/r", "delete", "--force", "id1"])
    assert log.calls() == [["--root", "/r", "delete", "--force", "id1"]]
    assert log.command(log.calls()[0]) == (["--root", "/r"], "delete", ["--force", "id1"])
    log.offset = 0
    assert log.created_ids() == ["id1"]


def test_shared_baseline_is_restored_by_the_last_owner(tmp_path, monkeypatch):
    monkeypatch.setattr(SharedBaseline, "BASELINE", str(tmp_path / "baseline.json"))
    monkeypatch.setattr(SharedBaseline, "LOCK_DIR", str(tmp_path))
    first, second = SharedBaseline("podman"), SharedBaseline("containerd")
    base = first.join()
    assert set(base) == {"ipt", "nft", "sysctls", "paths", "mounts"}
    assert second.join() == base                  # joins the first session's baseline
    with first.leave() as last:
        assert not last
    with second.leave() as last:
        assert last
    assert not os.path.exists(SharedBaseline.BASELINE)
    # owners that died leave their baseline for the next session, which restores it
    stale = dict(base, sysctls={"/proc/sys/net/ipv4/ip_forward": "stale"})
    with open(SharedBaseline.BASELINE, "w") as f:
        json.dump({"owners": ["999999999:podman"], "baseline": stale}, f)
    assert first.join() == stale
    with first.leave() as last:
        assert last
