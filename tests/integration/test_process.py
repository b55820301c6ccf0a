"""What the container's process sees of itself: pid, hostname, user, cwd, env, umask, rlimits, argv."""

import os
import resource

import pytest


def test_pid_1_in_new_pid_namespace(runtime, bundle):
    out = runtime.output(bundle(), "echo $$; cut -d' ' -f1,4 /proc/self/stat; readlink /proc/1/ns/pid")
    pid, stat, ns = out.splitlines()
    assert pid == "1"
    # /proc/self/stat of `cut` itself: a child of PID 1
    assert stat.split()[1] == "1"
    assert ns != os.readlink("/proc/self/ns/pid")


def test_sees_only_its_own_processes(runtime, bundle):
    out = runtime.output(bundle(), "ls -d /proc/[0-9]* | wc -l")
    assert int(out) <= 3        # sh, ls, wc


def test_hostname(runtime, bundle):
    b = bundle()
    b.config["hostname"] = "oci-test-host"
    assert runtime.output(b, "hostname; cat /proc/sys/kernel/hostname") == "oci-test-host\n" * 2
    assert os.uname().nodename != "oci-test-host"


@pytest.mark.parametrize("user,expect", [
    ({"uid": 0, "gid": 0}, "0 0 0"),
    ({"uid": 1000, "gid": 1000}, "1000 1000 1000"),
    ({"uid": 1000, "gid": 1000, "additionalGids": [5, 65534]}, "1000 1000 1000 5 65534"),
    ({"uid": 65534, "gid": 65534}, "65534 65534 65534"),
    ({"uid": 0, "gid": 0, "additionalGids": [0, 10]}, "0 0 0 10"),
])
def test_user(runtime, bundle, user, expect):
    b = bundle()
    b.config["process"]["user"] = user
    assert runtime.output(b, "echo $(id -u) $(id -g) $(id -G)") == expect + "\n"
    out = runtime.output(b, "grep -E '^(Uid|Gid|Groups):' /proc/self/status")
    status = {k: v.split() for k, v in (line.split(":", 1) for line in out.splitlines())}
    assert status["Uid"] == [str(user["uid"])] * 4
    assert status["Gid"] == [str(user["gid"])] * 4
    assert sorted(map(int, status["Groups"])) == sorted(set(user.get("additionalGids", [])))


def test_id_output(runtime, bundle):
    b = bundle("id")
    b.config["process"]["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [5, 65534]}
    assert runtime.output(b) == "uid=1000 gid=1000 groups=5,65534(nobody)\n"


def test_non_root_has_no_capabilities_in_effect(runtime, bundle):
    b = bundle()
    b.config["process"]["user"] = {"uid": 1000, "gid": 1000}
    out = runtime.output(b, "grep -E '^Cap(Eff|Prm)' /proc/self/status; touch /root/x 2>/dev/null; echo $?")
    lines = dict(line.split(":\t") for line in out.splitlines()[:2])
    assert int(lines["CapEff"], 16) == 0 and int(lines["CapPrm"], 16) == 0
    assert out.splitlines()[-1] != "0"


def test_capabilities_of_root(runtime, bundle):
    """runc spec asks for AUDIT_WRITE, KILL, NET_BIND_SERVICE in every set but inheritable; the
    kernel refuses ambient capabilities that are not inheritable, and runc ignores that failure."""
    out = runtime.output(bundle(), "grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb)' /proc/self/status")
    caps = {k: int(v, 16) for k, v in (line.split(":\t") for line in out.splitlines())}
    want = (1 << 29) | (1 << 5) | (1 << 10)     # CAP_AUDIT_WRITE, CAP_KILL, CAP_NET_BIND_SERVICE
    assert caps["CapBnd"] == want
    assert caps["CapEff"] == want and caps["CapPrm"] == want
    assert caps["CapInh"] == 0 and caps["CapAmb"] == 0


def test_ambient_capabilities(runtime, bundle):
    b = bundle("grep", "-E", "^Cap(Inh|Amb)", "/proc/self/status")
    b.config["process"]["capabilities"]["inheritable"] = ["CAP_KILL"]
    b.config["process"]["capabilities"]["ambient"] = ["CAP_KILL"]
    caps = {k: int(v, 16) for k, v in (line.split(":\t") for line in runtime.output(b).splitlines())}
    assert caps == {"CapInh": 1 << 5, "CapAmb": 1 << 5}


def test_no_new_privileges(runtime, bundle):
    b = bundle("grep", "NoNewPrivs", "/proc/self/status")
    assert runtime.output(b).split() == ["NoNewPrivs:", "1"]
    b.config["process"]["noNewPrivileges"] = False
    assert runtime.output(b).split() == ["NoNewPrivs:", "0"]


@pytest.mark.parametrize("cwd", ["/", "/tmp", "/bin"])
def test_cwd(runtime, bundle, cwd):
    b = bundle("pwd")
    b.config["process"]["cwd"] = cwd
    assert runtime.output(b) == cwd + "\n"


def test_cwd_created_when_missing(runtime, bundle):
    """runc creates a missing cwd (in the rootfs, before making it read-only)."""
    b = bundle("pwd")
    b.config["process"]["cwd"] = "/work/dir"
    assert runtime.output(b) == "/work/dir\n"
    assert (b.path / "rootfs" / "work" / "dir").is_dir()


def test_env(runtime, bundle):
    b = bundle("env")
    b.config["process"]["env"] = ["PATH=/bin", "FOO=bar baz", "EMPTY=", "HOME=/custom"]
    env = runtime.output(b).splitlines()
    assert {"PATH=/bin", "FOO=bar baz", "EMPTY=", "HOME=/custom"} <= set(env)
    assert not any(e.startswith(("TERM=", "container=")) for e in env)


@pytest.mark.parametrize("user,home", [({"uid": 0, "gid": 0}, "/root"),
                                       ({"uid": 65534, "gid": 65534}, "/nonexistent"),
                                       ({"uid": 1234, "gid": 1234}, "/")])
def test_home_from_passwd_when_unset(runtime, bundle, user, home):
    b = bundle("sh", "-c", "echo $HOME")
    b.config["process"]["user"] = user
    assert runtime.output(b) == home + "\n"


def test_env_empty_home_and_repeated_names(runtime, bundle):
    """As runc's init sets the environment: a name given twice keeps its first place and its last
    value; an empty HOME gets the user's home from the rootfs's /etc/passwd."""
    b = bundle("env")
    b.config["process"]["env"] = ["A=1", "HOME=", "B=2", "A=3", "PATH=/bin"]
    b.config["process"]["user"] = {"uid": 65534, "gid": 65534}
    assert runtime.output(b).splitlines() == ["A=3", "HOME=/nonexistent", "B=2", "PATH=/bin"]


def test_exec_format_error_is_one_line(runtime, bundle):
    """The last step (execve) failing: one line on stderr, naming the file and the error."""
    b = bundle("/bin/bad")
    bad = b.copy_rootfs() / "bin" / "bad"
    bad.write_bytes(b"\x7fELF not really")
    bad.chmod(0o755)
    r = runtime.run_container(b)
    assert r.rc != 0
    (line,) = r.err.splitlines()
    assert "/bin/bad" in line and "exec format error" in line.lower()
    if runtime.name == "ociruntime":
        assert line == "ociruntime: exec /bin/bad: Exec format error"


@pytest.mark.needs_runc
def test_home_from_passwd_bytes(runtime, runc, bundle):
    """The passwd file is bytes: an entry that is not UTF-8 does not stop the lookup, a CRLF line
    ends before its CR, an empty home stays empty and a missing entry gives "/" (as runc: the
    same output for each uid)."""
    b = bundle("sh", "-c", "echo $HOME")
    etc = b.copy_rootfs() / "etc"
    (etc / "passwd").unlink()
    (etc / "passwd").write_bytes(b"root:x:0:0:root:/root:/bin/sh\n"
                                 b"caf\xe9:x:1000:1000:Caf\xe9 \xff:/home/caf\xe9:/bin/sh\n"
                                 b"crlf:x:1234:1234::/home/crlf\r\n"
                                 b"nohome:x:1235:1235:::/bin/sh\n")
    for uid, home in ((1234, "/home/crlf"), (1235, ""), (1236, "/")):
        b.config["process"]["user"] = {"uid": uid, "gid": uid}
        assert runtime.output(b) == home + "\n"
        assert runc.output(b) == home + "\n"


def test_default_umask(runtime, bundle):
    assert runtime.output(bundle("sh", "-c", "umask")) == "0022\n"


def test_umask(runtime, bundle):
    b = bundle("sh", "-c", "umask; touch /dev/shm/f; stat -c %a /dev/shm/f")
    b.config["process"]["user"]["umask"] = 0o077
    assert runtime.output(b) == "0077\n600\n"


def test_rlimits(runtime, bundle):
    hard_now = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    hard = min(hard_now, 4096)     # root lacks CAP_SYS_RESOURCE here: the hard limit cannot grow
    b = bundle("sh", "-c", "ulimit -Sn; ulimit -Hn; ulimit -Ss")
    b.config["process"]["rlimits"] = [
        {"type": "RLIMIT_NOFILE", "soft": 512, "hard": hard},
        {"type": "RLIMIT_STACK", "soft": 4 * 1024 * 1024, "hard": 4 * 1024 * 1024},
    ]
    assert runtime.output(b).split() == ["512", str(hard), "4096"]


def test_default_rlimit_nofile(runtime, bundle):
    assert runtime.output(bundle("sh", "-c", "ulimit -n")) == "1024\n"


@pytest.mark.parametrize("args,expect", [
    (["echo", "via PATH"], "via PATH\n"),
    (["/bin/echo", "absolute"], "absolute\n"),
    (["busybox", "echo", "multi-call"], "multi-call\n"),
    (["sh", "-c", 'echo "$0" "$1"', "zero", "one"], "zero one\n"),
])
def test_args(runtime, bundle, args, expect):
    assert runtime.output(bundle(*args)) == expect


def test_args_resolved_with_containers_path(runtime, bundle):
    """args[0] is looked up in the PATH of process.env, inside the rootfs."""
    b = bundle()
    b.copy_rootfs()
    (b.own_rootfs / "opt" / "bin").mkdir(parents=True)
    script = b.own_rootfs / "opt" / "bin" / "oci-test-hello"
    script.write_text("#!/bin/sh\necho hello from opt\n")
    script.chmod(0o755)
    b.args = ["oci-test-hello"]
    b.config["process"]["env"] = ["PATH=/opt/bin:/bin"]
    assert runtime.output(b) == "hello from opt\n"


def test_stdin_is_passed_through(runtime, bundle):
    b = bundle("sh", "-c", "cat; echo done")
    r = runtime.run("run", "--bundle", b, runtime.new_id(), input="piped\n")
    assert (r.rc, r.out) == (0, "piped\ndone\n")


def test_open_fds_are_only_stdio(runtime, bundle):
    out = runtime.output(bundle(), "ls /proc/self/fd")
    # 0 1 2 and the fd ls uses to read the directory
    assert out.split() in (["0", "1", "2"], ["0", "1", "2", "3"])
