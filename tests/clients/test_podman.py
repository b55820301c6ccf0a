"""podman 4.3 (Debian's, with conmon and netavark) driving the runtime under test through --runtime.

Each test asserts on what the container sees and on what podman reports; the fixture checks that
nothing is left.  The runtime's argv is logged by a wrapper (podman.log) for the contract checks.
"""

import json
import os
import re
import time

import pytest

import helpers
from .clientlib import read, wait_for

TRAP_TERM = "trap 'exit 42' TERM; while :; do sleep 0.1; done"


def runtime_calls(pm, command):
    return [a for a in pm.log.calls() if pm.log.command(a)[1] == command]


def start_detached(pm, name, *cmd, opts=()):
    r = pm("run", "-d", "--name", name, *opts, pm.image, *(cmd or ("sleep", "1000")))
    assert r.rc == 0, f"podman run -d: {r}"
    wait_for(lambda: pm.inspect(name, "{{.State.Status}}") == "running", 10, f"{name} running")
    return r.out.strip()


def test_run_rm_echo(podman):
    r = podman("run", "--rm", podman.image, "echo", "hi")
    assert (r.rc, r.out) == (0, "hi\n"), r
    # the contract: json log format (runtime registered in runtime_supports_json), pid file, no --root
    create = runtime_calls(podman, "create")
    assert len(create) == 1
    flags, _, args = podman.log.command(create[0])
    assert "--log-format=json" in flags and "--log" in flags
    assert "--pid-file" in args and "--bundle" in args
    assert runtime_calls(podman, "start") and runtime_calls(podman, "delete")
    assert podman.ids() == []


def test_info_shows_runtime_version(podman):
    # podman info runs `RUNTIME --version` and shows its whole output
    r = podman("info", "--format", "{{json .Host.OCIRuntime}}")
    assert r.rc == 0, r
    info = json.loads(r.out)
    assert info["name"] == podman.runtime_name
    assert re.match(r"^\S+ version \d+\.\d+", info["version"]) and "\nspec: 1." in info["version"], info
    assert ["--version"] in podman.log.calls()


def test_run_detached_and_state(podman):
    cid = start_detached(podman, "d1")
    pid = int(podman.inspect("d1", "{{.State.Pid}}"))
    assert helpers.pid_alive(pid)
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        assert f.read().split(b"\0")[:2] == [b"sleep", b"1000"]
    # the container runs in the cgroup podman asked for
    with open(f"/proc/{pid}/cgroup") as f:
        assert f"{podman.cgroup_parent}/libpod-{cid}" in f.read()
    # podman's view comes from the runtime's `state`
    r = podman("ps", "--format", "{{.Names}} {{.Status}}")
    assert re.search(r"^d1 Up", r.out, re.M), r


def test_exec(podman):
    start_detached(podman, "ex")
    r = podman("exec", "ex", "sh", "-c", "echo exec-ok; echo $$")
    assert r.rc == 0, r
    out = r.out.split()
    assert out[0] == "exec-ok" and out[1] != "1"
    r = podman("exec", "ex", "sh", "-c", "exit 7")
    assert r.rc == 7, r


def test_exec_options_and_stdin(podman):
    start_detached(podman, "exo")
    r = podman("exec", "-i", "--user", "65534:65534", "--workdir", "/tmp", "-e", "FOO=bar", "exo",
               "sh", "-c", "id -u; id -g; pwd; echo $FOO; cat", input="piped\n")
    assert (r.rc, r.out) == (0, "65534\n65534\n/tmp\nbar\npiped\n"), r


def test_exec_missing_command(podman):
    start_detached(podman, "exm")
    r = podman("exec", "exm", "/nonexistent")
    assert r.rc == 127, r
    assert re.search(r'exec: "/nonexistent": .*no such file or directory', r.err), r
    assert podman.inspect("exm", "{{.State.Status}}") == "running"


def test_exec_tty(podman):
    start_detached(podman, "ext")
    r = podman.tty("exec", "-it", "ext", "sh", "-c", "tty; stty size")
    assert r.rc == 0, r
    assert re.search(r"^/dev/pts/\d+$", r.out, re.M), r


def test_exec_detached(podman):
    start_detached(podman, "exd")
    r = podman("exec", "-d", "exd", "sh", "-c", "sleep 0.3; echo done > /tmp/marker")
    assert r.rc == 0, r
    wait_for(lambda: podman("exec", "exd", "cat", "/tmp/marker").out == "done\n", 10, "exec -d ran")


def test_pause_unpause(podman):
    cid = start_detached(podman, "pz", "sh", "-c", "while :; do date +%s%N > /tmp/tick; sleep 0.05; done")
    pid = int(podman.inspect("pz", "{{.State.Pid}}"))
    tick = f"/proc/{pid}/root/tmp/tick"
    wait_for(lambda: os.path.exists(tick), 5, "ticking")
    assert podman("pause", "pz").rc == 0
    assert podman.inspect("pz", "{{.State.Status}}") == "paused"
    freezer = f"/sys/fs/cgroup/freezer{podman.cgroup_parent}/libpod-{cid}/freezer.state"
    with open(freezer) as f:
        assert f.read().strip() == "FROZEN"
    frozen = read(tick)
    time.sleep(0.3)
    assert read(tick) == frozen
    r = podman("unpause", "pz")
    assert r.rc == 0, r
    assert podman.inspect("pz", "{{.State.Status}}") == "running"
    with open(freezer) as f:
        assert f.read().strip() == "THAWED"
    wait_for(lambda: read(tick) != frozen, 5, "running again after unpause")
    assert runtime_calls(podman, "pause") and runtime_calls(podman, "resume")


def test_kill_signal(podman):
    start_detached(podman, "ks", "sh", "-c", "trap 'echo got-usr1' USR1; while :; do sleep 0.1; done")
    r = podman("kill", "-s", "USR1", "ks")
    assert r.rc == 0, r
    wait_for(lambda: "got-usr1" in podman("logs", "ks").out, 10, "USR1 delivered")
    assert podman.inspect("ks", "{{.State.Status}}") == "running"
    kills = [podman.log.command(a)[2] for a in runtime_calls(podman, "kill")]
    assert any(args[-1] in ("10", "USR1", "SIGUSR1") for args in kills), kills


def test_stop_start_rm(podman):
    # PID 1 without a TERM handler ignores TERM: stop -t 1 sends TERM, then KILL after a second
    start_detached(podman, "ss")
    t0 = time.monotonic()
    r = podman("stop", "-t", "1", "ss")
    assert r.rc == 0, r
    assert time.monotonic() - t0 >= 0.9
    assert podman.inspect("ss", "{{.State.Status}}") == "exited"
    assert podman.inspect("ss", "{{.State.ExitCode}}") == "137"
    sigs = [podman.log.command(a)[2][-1] for a in runtime_calls(podman, "kill")]
    assert sigs[:1] == ["15"] and "9" in sigs, sigs
    # a stopped container starts again (a new create + start of the same id)
    r = podman("start", "ss")
    assert r.rc == 0, r
    wait_for(lambda: podman.inspect("ss", "{{.State.Status}}") == "running", 10, "restarted")
    pid = int(podman.inspect("ss", "{{.State.Pid}}"))
    r = podman("rm", "-f", "-t", "0", "ss")
    assert r.rc == 0, r
    wait_for(lambda: not helpers.pid_alive(pid), 5, "container process gone")
    assert podman.ids() == []


def test_stop_with_term_handler(podman):
    start_detached(podman, "st", "sh", "-c", TRAP_TERM)
    r = podman("stop", "-t", "10", "st")
    assert r.rc == 0, r
    assert podman.inspect("st", "{{.State.ExitCode}}") == "42"


def test_stop_host_pid_namespace(podman):
    # without a pid namespace of its own the container's processes are signalled one by one: kill --all
    start_detached(podman, "hp", "sh", "-c", "sleep 1000 & sleep 1000", opts=("--pid", "host"))
    pid = int(podman.inspect("hp", "{{.State.Pid}}"))
    r = podman("stop", "-t", "5", "hp")
    assert r.rc == 0, r
    assert not helpers.pid_alive(pid)
    kills = [podman.log.command(a)[2] for a in runtime_calls(podman, "kill")]
    assert kills and kills[0][0] == "--all" and kills[0][-1] == "15", kills


def test_rm_force_running(podman):
    cid = start_detached(podman, "rmf")
    pid = int(podman.inspect("rmf", "{{.State.Pid}}"))
    r = podman("rm", "-f", "rmf")
    assert r.rc == 0, r
    assert not helpers.pid_alive(pid)
    assert podman.ids() == []
    assert not os.path.exists(os.path.join(podman.runtime_root, cid))


def test_run_tty(podman):
    r = podman.tty("run", "--rm", "-it", podman.image, "sh", "-c", "tty; stty size; echo TERM=$TERM")
    assert r.rc == 0, r
    assert re.search(r"^/dev/pts/0$", r.out, re.M), r
    assert "TERM=xterm" in r.out
    create = runtime_calls(podman, "create")
    assert "--console-socket" in podman.log.command(create[0])[2]


def test_run_tty_input(podman):
    r = podman.tty("run", "--rm", "-it", podman.image, "sh", "-c", "echo ready; read x; echo got:$x",
                   input="typed\n", until="ready")
    assert r.rc == 0, r
    assert "got:typed" in r.out


def test_run_interactive_piped_stdin(podman):
    r = podman("run", "--rm", "-i", podman.image, "sh", "-c", "cat; echo end", input="piped\nline2\n")
    assert (r.rc, r.out) == (0, "piped\nline2\nend\n"), r


def test_user_env_workdir_hostname(podman):
    r = podman("run", "--rm", "--user", "65534", "--workdir", "/tmp", "-e", "FOO=bar", "--hostname", "h1",
               podman.image, "sh", "-c", "id -u; pwd; echo $FOO; hostname")
    assert (r.rc, r.out) == (0, "65534\n/tmp\nbar\nh1\n"), r


def test_memory_limit(podman):
    r = podman("run", "--rm", "--memory", "64m", podman.image, "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes")
    assert (r.rc, r.out) == (0, "67108864\n"), r


def test_pids_limit(podman):
    r = podman("run", "--rm", "--pids-limit", "10", podman.image, "cat", "/sys/fs/cgroup/pids/pids.max")
    assert (r.rc, r.out) == (0, "10\n"), r


def test_network_none(podman):
    r = podman("run", "--rm", "--network", "none", podman.image, "ip", "-o", "link")
    assert r.rc == 0, r
    names = [line.split(":")[1].strip() for line in r.out.splitlines()]
    assert names == ["lo"], r


def test_default_bridge_network(podman):
    r = podman("run", "--rm", podman.image, "sh", "-c", "ip -o -4 addr show eth0; ip route")
    assert r.rc == 0, r
    prefix = podman.subnet.rsplit(".", 1)[0] + "."
    m = re.search(r"inet (\d+\.\d+\.\d+\.\d+)/24", r.out)
    assert m and m.group(1).startswith(prefix), r
    assert re.search(rf"default via {re.escape(prefix)}1 ", r.out), r
    # the private bridge carries it while a container is attached; netavark removes it after the last
    start_detached(podman, "br")
    ports = os.listdir(f"/sys/class/net/{podman.bridge}/brif")
    assert len(ports) == 1 and ports[0].startswith("veth"), ports
    assert podman("rm", "-f", "-t", "0", "br").rc == 0
    assert not os.path.exists(f"/sys/class/net/{podman.bridge}")


def test_bridge_network_reaches_gateway(podman):
    r = podman("run", "--rm", podman.image, "ping", "-c", "1", "-W", "5", podman.subnet.rsplit(".", 1)[0] + ".1")
    assert r.rc == 0, r
    assert "1 packets received" in r.out


def test_read_only(podman):
    r = podman("run", "--rm", "--read-only", podman.image, "sh", "-c",
               "touch /etc/x 2>&1; echo rc=$?; touch /tmp/x && echo tmp-ok")
    assert r.rc == 0, r
    assert "Read-only file system" in r.out and "rc=1" in r.out and "tmp-ok" in r.out, r


def test_volume(podman, tmp_path):
    vol = tmp_path / "vol"
    vol.mkdir()
    (vol / "in").write_text("from-host\n")
    r = podman("run", "--rm", "-v", f"{vol}:/data", podman.image, "sh", "-c", "cat /data/in; echo from-ctr > /data/out")
    assert (r.rc, r.out) == (0, "from-host\n"), r
    assert (vol / "out").read_text() == "from-ctr\n"
    r = podman("run", "--rm", "-v", f"{vol}:/data:ro", podman.image, "sh", "-c", "echo x > /data/in")
    assert r.rc != 0 and "Read-only file system" in r.err, r
    assert (vol / "in").read_text() == "from-host\n"


def test_cap_drop(podman):
    script = "grep CapEff /proc/self/status; touch /tmp/f; chown 65534 /tmp/f && echo chown-ok || echo chown-failed"
    r = podman("run", "--rm", podman.image, "sh", "-c", script)
    assert r.rc == 0 and "chown-ok" in r.out, r
    eff = int(re.search(r"CapEff:\s*([0-9a-f]+)", r.out).group(1), 16)
    assert eff & 1                              # CAP_CHOWN by default
    r = podman("run", "--rm", "--cap-drop", "CHOWN", podman.image, "sh", "-c", script)
    assert r.rc == 0 and "chown-failed" in r.out, r
    eff2 = int(re.search(r"CapEff:\s*([0-9a-f]+)", r.out).group(1), 16)
    assert eff2 == eff & ~1


def test_exit_status(podman):
    r = podman("run", "--rm", podman.image, "sh", "-c", "exit 3")
    assert r.rc == 3, r
    r = podman("run", "--name", "ex3", podman.image, "sh", "-c", "exit 3")
    assert r.rc == 3, r
    assert podman.inspect("ex3", "{{.State.ExitCode}}") == "3"


def test_missing_command_127(podman):
    r = podman("run", "--rm", podman.image, "/nonexistent")
    assert r.rc == 127, r
    # the message is the runtime's (podman takes it from the --log file)
    assert re.search(r'exec: "/nonexistent": .*no such file or directory', r.err), r
    r = podman("run", "--rm", podman.image, "no-such-command")
    assert r.rc == 127, r
    assert 'exec: "no-such-command": executable file not found in $PATH' in r.err, r


@pytest.mark.ociruntime_only
def test_missing_command_message_is_ours(podman):
    # podman read the error from the --log file (JSON) and prefixed the runtime's name; the
    # container is gone (podman called delete --force after the failed create)
    r = podman("run", "--rm", podman.image, "/nonexistent")
    assert r.rc == 127, r
    assert r.err == ('Error: ociruntime: exec: "/nonexistent": stat /nonexistent: no such file or directory: '
                     'OCI runtime attempted to invoke a command that was not found\n'), r
    assert podman.ids() == []
    assert runtime_calls(podman, "delete")


def test_not_executable_126(podman):
    r = podman("run", "--rm", podman.image, "/etc/passwd")
    assert r.rc == 126, r
    assert "permission denied" in r.err.lower(), r
