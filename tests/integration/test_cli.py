"""The command line as runc's users meet it (urfave/cli v1 over Go's flag package): help, the
number of arguments, flags after the container id, `kill ID 0`, exec's flags, and `--debug`."""

import json
import os
import re

import pytest

from helpers import LONG_RUNNING, wait_exit

# runc 1.1.5's options of each command (its --help); ociruntime lists the same
OPTIONS = {
    "create": ["bundle", "console-socket", "pid-file", "no-pivot", "no-new-keyring", "preserve-fds"],
    "run": ["bundle", "console-socket", "detach", "keep", "pid-file", "no-subreaper", "no-pivot",
            "no-new-keyring", "preserve-fds"],
    "start": [],
    "state": [],
    "kill": ["all"],
    "delete": ["force"],
    "list": ["format", "quiet"],
    "ps": ["format"],
    "pause": [],
    "resume": [],
    "spec": ["bundle", "rootless"],
    "update": ["resources", "blkio-weight", "cpu-period", "cpu-quota", "cpu-share", "cpu-rt-period",
               "cpu-rt-runtime", "cpuset-cpus", "cpuset-mems", "memory", "memory-reservation", "memory-swap",
               "pids-limit", "l3-cache-schema", "mem-bw-schema"],
    "events": ["interval", "stats"],
    "exec": ["console-socket", "cwd", "env", "tty", "user", "additional-gids", "process", "detach", "pid-file",
             "process-label", "apparmor", "no-new-privs", "cap", "preserve-fds", "cgroup", "ignore-paused"],
    "features": [],
}


def err(r):
    """stderr with runc's logrus quoting undone (msg="... \\"start\\" ...")."""
    return r.err.replace('\\"', '"')


def running(runtime, b):
    cid = runtime.create(b)
    runtime.start(cid)
    return cid, runtime.state(cid)["pid"]


def stop(runtime, cid, pid):
    runtime.kill(cid, "KILL", check=True)
    wait_exit(pid)


# ---------------------------------------------------------------------------------------------------
# help


@pytest.mark.parametrize("cmd", sorted(OPTIONS))
def test_command_help_lists_each_option_on_a_line(runtime, cmd):
    r = runtime.run(cmd, "--help")
    assert r.rc == 0 and r.err == ""
    assert re.search(r"^NAME:\n\s+\S+ %s - \S" % cmd, r.out, re.M), r.out
    for opt in OPTIONS[cmd]:
        assert re.search(r"^\s+--%s\b" % re.escape(opt), r.out, re.M), f"--{opt} not listed:\n{r.out}"
    # the same text from `help COMMAND`, `h COMMAND`, `-h` and a help flag after the id
    assert runtime.run("help", cmd).out == r.out
    assert runtime.run("h", cmd).out == r.out
    assert runtime.run(cmd, "-h").out == r.out


def test_help_flag_after_the_id(runtime):
    r = runtime.run("state", runtime.new_id("nope"), "--help")
    assert r.rc == 0 and r.out == runtime.run("state", "--help").out


def test_help_lists_the_commands(runtime):
    for argv in (("help",), ("--help",), ()):
        r = runtime.run(*argv)
        assert r.rc == 0, argv
        for cmd in OPTIONS:
            assert re.search(r"^\s+%s\b" % cmd, r.out, re.M), (argv, cmd)
        for opt in ("root", "log", "log-format", "debug", "systemd-cgroup"):
            assert re.search(r"^\s+--%s\b" % opt, r.out, re.M), (argv, opt)


@pytest.mark.parametrize("argv", [("help", "nosuch"), ("nosuch",)])
def test_unknown_help_topic(runtime, argv):
    r = runtime.run(*argv)
    assert r.rc == 3
    runtime.refused(r, "No help topic for 'nosuch'")
    assert r.out == ""


# ---------------------------------------------------------------------------------------------------
# the number of arguments


@pytest.mark.parametrize("argv,message", [
    (("start",), '"start" requires exactly 1 argument(s)'),
    (("start", "a", "b"), '"start" requires exactly 1 argument(s)'),
    (("create",), '"create" requires exactly 1 argument(s)'),
    (("run", "a", "b"), '"run" requires exactly 1 argument(s)'),
    (("state",), '"state" requires exactly 1 argument(s)'),
    (("delete", "--force"), '"delete" requires exactly 1 argument(s)'),
    (("pause", "a", "b"), '"pause" requires exactly 1 argument(s)'),
    (("resume",), '"resume" requires exactly 1 argument(s)'),
    (("update",), '"update" requires exactly 1 argument(s)'),
    (("events",), '"events" requires exactly 1 argument(s)'),
    (("kill",), '"kill" requires a minimum of 1 argument(s)'),
    (("kill", "a", "KILL", "c"), '"kill" requires a maximum of 2 argument(s)'),
    (("ps",), '"ps" requires a minimum of 1 argument(s)'),
    (("exec",), '"exec" requires a minimum of 1 argument(s)'),
    (("list", "x"), '"list" requires exactly 0 argument(s)'),
    (("spec", "x"), '"spec" requires exactly 0 argument(s)'),
    (("features", "x"), '"features" requires exactly 0 argument(s)'),
])
def test_wrong_number_of_arguments_names_the_command(runtime, argv, message):
    r = runtime.run(*argv)
    assert r.rc == 1                                   # exec's too: not its 255
    assert message in err(r)
    assert len(r.err.splitlines()) == 1, r.err
    assert r.out.startswith("Incorrect Usage.\n\n")   # and the command's help, on stdout
    assert re.search(r"^NAME:\n\s+\S+ %s - " % argv[0], r.out, re.M)


@pytest.mark.ociruntime_only
def test_wrong_number_of_arguments_message(runtime):
    r = runtime.run("start")
    assert r.err == 'ociruntime: "start" requires exactly 1 argument(s)\n'


# ---------------------------------------------------------------------------------------------------
# flags after the container id (urfave's reordering; not for exec and ps)


def pids_max(pid):
    """pids.max of process pid's cgroup, read on the host (v1 pids hierarchy, or cgroup2)."""
    v1, v2 = {}, None
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fs = right.split()
            if fs and fs[0] == "cgroup" and "pids" in fs[2].split(","):
                v1 = left.split()[4]
            elif fs and fs[0] == "cgroup2" and v2 is None:
                v2 = left.split()[4]
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            if v1 and "pids" in ctrls.split(","):
                return open(v1 + path + "/pids.max").read().strip()
            if not v1 and ctrls == "":
                return open(v2 + path + "/pids.max").read().strip()
    raise AssertionError(f"process {pid} has no pids cgroup")


def test_update_flags_after_the_id(runtime, bundle):
    cid, pid = running(runtime, bundle(*LONG_RUNNING))
    runtime.run("update", cid, "--pids-limit", "42", check=True)
    assert pids_max(pid) == "42"
    runtime.run("update", cid, "--pids-limit=43", "--memory", "100m", check=True)
    assert pids_max(pid) == "43"
    # a value flag at the end takes the id as its value (urfave moves the id behind it)
    r = runtime.run("update", cid, "--pids-limit")
    assert r.rc == 1
    runtime.refused(r, f'invalid value "{cid}" for flag -pids-limit: parse error')
    assert pids_max(pid) == "43"
    stop(runtime, cid, pid)


def test_delete_force_after_the_id(runtime, bundle):
    cid, pid = running(runtime, bundle(*LONG_RUNNING))
    r = runtime.run("delete", cid, "--force")
    assert r.rc == 0, r.err
    wait_exit(pid)
    assert runtime.status(cid) is None


def test_kill_flag_after_the_signal(runtime, bundle):
    cid, pid = running(runtime, bundle(*LONG_RUNNING))
    runtime.run("kill", cid, "KILL", "--all", check=True)
    wait_exit(pid)
    assert runtime.status(cid) == "stopped"


def test_kill_flag_between_id_and_signal_takes_the_signal_along(runtime, bundle):
    """`kill ID --all KILL`: the argument after a flag moves with it, so KILL becomes the id
    (runc 1.1.5 does the same): nothing is signalled."""
    cid, pid = running(runtime, bundle(*LONG_RUNNING))
    r = runtime.run("kill", cid, "--all", "KILL")
    assert r.rc == 1
    runtime.refused(r, "container does not exist")
    assert runtime.status(cid) == "running"
    stop(runtime, cid, pid)


def test_state_events_pause_flags_after_the_id(runtime, bundle):
    cid, pid = running(runtime, bundle(*LONG_RUNNING))
    st = json.loads(runtime.run("state", cid, "--", check=True).out)
    assert st["status"] == "running"
    out = runtime.run("events", cid, "--stats", "--interval", "1s", check=True).out
    assert json.loads(out.splitlines()[0])["type"] == "stats"
    # an unknown flag is not moved: it is one argument too many
    r = runtime.run("pause", cid, "--nosuch")
    assert r.rc == 1
    runtime.refused(r, '"pause" requires exactly 1 argument(s)')
    assert runtime.status(cid) == "running"
    stop(runtime, cid, pid)


def test_ps_arguments_after_the_id_go_to_ps(runtime, bundle):
    cid, pid = running(runtime, bundle(*LONG_RUNNING))
    lines = runtime.run("ps", cid, "-o", "pid,comm", check=True).out.splitlines()
    assert lines[0].split() == ["PID", "COMMAND"]
    assert str(pid) in [ln.split()[0] for ln in lines[1:]]
    assert json.loads(runtime.run("ps", "--format", "json", cid, check=True).out) != []
    stop(runtime, cid, pid)


# ---------------------------------------------------------------------------------------------------
# exec: everything after the id is the command (runc: SkipArgReorder); Go's flag rules before it


def test_exec_arguments_after_the_id_are_the_command(runtime, bundle):
    cid, pid = running(runtime, bundle(*LONG_RUNNING))
    r = runtime.run("exec", cid, "--env", "A=b", "env")
    assert r.rc == 255
    runtime.refused(r, 'exec failed: unable to start container process: exec: "--env": executable file not found '
                       'in $PATH')
    assert runtime.run("exec", cid, "echo", "--env", "-t", check=True).out == "--env -t\n"
    assert runtime.run("exec", "--", cid, "echo", "hi", check=True).out == "hi\n"
    stop(runtime, cid, pid)


def test_exec_flag_forms(runtime, bundle):
    cid, pid = running(runtime, bundle(*LONG_RUNNING))
    for flags in (["-e", "A=b"], ["--e=A=b"], ["-env", "A=b"], ["--env=A=b"]):
        out = runtime.run("exec", *flags, "-t=false", cid, "sh", "-c", "echo $A", check=True).out
        assert out == "b\n", flags
    for flags, words in ((["--user=1", "-u", "0"], "Cannot use two forms of the same flag: u user"),
                         (["-eA=b"], "flag provided but not defined: -eA"),
                         (["--preserve-fds=1x"], 'invalid value "1x" for flag -preserve-fds: parse error'),
                         (["--tty=maybe"], 'invalid boolean value "maybe" for -tty: parse error')):
        r = runtime.run("exec", *flags, cid, "sh", "-c", "echo ran")
        assert r.rc == 1, (flags, r)
        runtime.refused(r, words)
        # runc's usage error: on stdout, before the command's help; the process never ran
        assert r.out.startswith(f"Incorrect Usage: {words}\n\nNAME:\n"), (flags, r.out)
        assert "ran" not in r.out.split("USAGE:")[0], (flags, r.out)
    assert runtime.run("exec", "--preserve-fds=-1", cid, "true").rc == 0     # none, as 0
    stop(runtime, cid, pid)


# ---------------------------------------------------------------------------------------------------
# kill ID 0


def test_kill_0_is_a_liveness_probe(runtime, bundle):
    cid = runtime.create(bundle(*LONG_RUNNING))
    pid = runtime.state(cid)["pid"]
    assert runtime.kill(cid, "0").rc == 0               # created
    runtime.start(cid)
    for argv in (("0",), ("--all", "0")):
        r = runtime.run("kill", *argv[:-1], cid, *argv[-1:])
        assert r.rc == 0, (argv, r.err)
    assert runtime.status(cid) == "running" and runtime.state(cid)["pid"] == pid
    stop(runtime, cid, pid)
    r = runtime.kill(cid, "0")
    assert r.rc == 1
    runtime.refused(r, "container not running")
    assert runtime.status(cid) == "stopped"


# ---------------------------------------------------------------------------------------------------
# --debug


def debug_lines(text):
    return [ln for ln in text.splitlines() if "level=debug" in ln]


def test_debug_lines_on_stderr(runtime, bundle):
    """Each of create and exec writes debug lines to stderr (logrus text lines, as runc's)."""
    b = bundle(*LONG_RUNNING)
    cid = runtime.new_id()
    r = runtime.run("--debug", "create", "--bundle", b, cid, check=True)
    assert debug_lines(r.err), r.err
    for line in debug_lines(r.err):
        assert re.match(r'^time="[^"]+" level=debug msg="', line), line
    runtime.start(cid)
    r = runtime.run("--debug", "exec", cid, "true", check=True)
    assert debug_lines(r.err), r.err
    runtime.delete(cid, force=True, check=True)


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_debug_lines_in_the_log(runtime, bundle, tmp_path, fmt):
    log = tmp_path / "log"
    b = bundle(*LONG_RUNNING)
    cid = runtime.new_id()
    r = runtime.run("--debug", "--log", log, "--log-format", fmt, "create", "--bundle", b, cid, check=True)
    assert r.err == ""                                  # all of it went to the log
    runtime.run("--debug", "--log", log, "--log-format", fmt, "start", cid, check=True)
    runtime.run("--debug", "--log", log, "--log-format", fmt, "exec", cid, "true", check=True)
    runtime.run("--debug", "--log", log, "--log-format", fmt, "delete", "--force", cid, check=True)
    lines = log.read_text().splitlines()
    assert lines
    for line in lines:
        if fmt == "json":
            e = json.loads(line)
            assert e["level"] == "debug" and isinstance(e["msg"], str) and e["time"]
        else:
            assert re.match(r'^time="[^"]+" level=debug msg=', line), line


@pytest.mark.ociruntime_only
def test_debug_names_each_step(runtime, bundle, tmp_path):
    log = tmp_path / "log.json"
    b = bundle(*LONG_RUNNING)
    cid = runtime.new_id()

    def msgs(*argv):
        before = len(log.read_text().splitlines()) if log.exists() else 0
        runtime.run("--debug", "--log", log, "--log-format", "json", *argv, check=True)
        return " | ".join(json.loads(ln)["msg"] for ln in log.read_text().splitlines()[before:])
    out = msgs("create", "--bundle", b, cid)
    for step in ("config.json is valid", "state directory", "cgroups made", "container init pid",
                 "mounted the rootfs", "waits for start", "state saved"):
        assert step in out, (step, out)
    assert "releasing the init" in msgs("start", cid)
    out = msgs("exec", cid, "true")
    for step in ("joining the namespaces", "has exec'd", "exited with status 0"):
        assert step in out, (step, out)
    assert "signal 0 to the init" in msgs("kill", cid, "0")
    out = msgs("delete", "--force", cid)
    for step in ("killing", "cgroups", "removed"):
        assert step in out, (step, out)


def test_no_debug_lines_without_debug(runtime, bundle, tmp_path):
    log = tmp_path / "log"
    cid = runtime.new_id()
    for argv in (("create", "--bundle", bundle(*LONG_RUNNING), cid), ("start", cid), ("exec", cid, "true"),
                 ("delete", "--force", cid)):
        r = runtime.run("--log", log, *argv, check=True)
        assert r.err == "", argv
    assert log.read_text() == ""
