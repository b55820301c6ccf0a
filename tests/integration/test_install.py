"""The installed `ociruntime` is software that moves: a wheel built here, installed into another
installation of the same Python minor version at another path, runs every command (a container
too) with the building interpreter out of sight; it never writes into its installation; it runs
isolated from the caller's Python environment; and where it cannot find a standard library it
says so in one line.  (The program, cext/launcher.c, exists where the installation has a static
libpython; elsewhere setup.py installs the script tools/ociruntime, which these tests run too.)"""
import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

import helpers
from helpers import LONG_RUNNING

REPO = Path(__file__).resolve().parents[2]
VERSION = "%d.%d" % sys.version_info[:2]


def _is_program(path):
    with open(path, "rb") as f:
        return f.read(4) == b"\x7fELF"


def _has_static_libpython():
    static = os.path.join(sysconfig.get_config_var("LIBPL") or "", sysconfig.get_config_var("LIBRARY") or "")
    return static.endswith(".a") and os.path.isfile(static)


def _tree(root):
    """{relative path: (type, size, mtime_ns, sha256 of small files)} of everything under root."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            digest = None
            if os.path.isfile(p) and not os.path.islink(p) and st.st_size < 1 << 20:
                with open(p, "rb") as f:
                    digest = hashlib.sha256(f.read()).hexdigest()
            out[os.path.relpath(p, root)] = (st.st_mode & 0o170000, st.st_size, st.st_mtime_ns, digest)
    return out


def _installation_of(binary):
    """The venv or installation the runtime under test belongs to (its bin/ directory's parent)."""
    return os.path.dirname(os.path.dirname(os.path.realpath(binary)))


def _every_command(rt, bundle, tmp_path):
    """Every command of the runtime once, with real containers; returns the outputs that matter."""
    out = {}
    r = rt.run("--version", check=True)
    out["version"] = r.out
    spec_dir = tmp_path / "spec"
    spec_dir.mkdir()
    rt.run("spec", "--bundle", spec_dir, check=True)
    assert (spec_dir / "config.json").is_file()
    rt.run("features", check=True)
    b = bundle(*LONG_RUNNING)
    cid = rt.create(b)
    assert rt.state(cid)["status"] == "created"
    rt.start(cid)
    rt.wait_status(cid, "running")
    assert "\n" in rt.run("list", check=True).out
    assert rt.run("ps", cid, check=True).rc == 0
    out["exec"] = rt.run("exec", cid, "sh", "-c", "echo $((6 * 7))", check=True).out
    rt.run("pause", cid, check=True)
    assert rt.state(cid)["status"] == "paused"
    rt.run("resume", cid, check=True)
    rt.run("update", "--pids-limit", "100", cid, check=True)
    rt.run("events", "--stats", cid, check=True)
    rt.run("kill", cid, "KILL", check=True)
    rt.wait_status(cid, "stopped")
    rt.run("delete", cid, check=True)
    out["run"] = rt.output(bundle("sh", "-c", "echo $$"))
    return out


def _other_installation():
    """The base interpreter of another installation of this Python's minor version, or None."""
    mine = os.path.realpath(sys.base_prefix)
    for candidate in ("/usr/bin/python" + VERSION, "/usr/local/bin/python" + VERSION):
        if not os.access(candidate, os.X_OK):
            continue
        r = subprocess.run([candidate, "-I", "-c", "import sys; print(sys.base_prefix)"],
                           capture_output=True, text=True, timeout=60)
        if r.returncode == 0 and os.path.realpath(r.stdout.strip()) != mine:
            return candidate
    return None


def _hidden(binary, hide, wrapper):
    """A script running ``binary`` in a private mount namespace where a tmpfs covers ``hide``."""
    wrapper.write_text(
        "#!/bin/sh\nexec unshare -m --propagation private -- sh -c "
        "'mount -t tmpfs -o mode=0755 ociruntime-test-hide \"$0\" && exec \"$@\"' %s %s \"$@\"\n"
        % (hide, binary))
    wrapper.chmod(0o755)
    return str(wrapper)


def test_a_wheel_built_here_runs_from_another_installation(runtime, bundle, tmp_path):
    """Issue 22: the wheel installed into a venv of another Python of the same minor version, the
    building interpreter's installation hidden under a tmpfs: every command works, a container
    runs, and the venv is byte for byte as it was after the install."""
    if runtime.name != "ociruntime":
        pytest.skip("installs ociruntime itself")
    other = _other_installation()
    if other is None:
        pytest.skip(f"no second installation of Python {VERSION} on this machine to install the wheel into")
    src = tmp_path / "src"
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    for rel in filter(None, files.decode().split("\0")):
        if (REPO / rel).is_file():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, src / rel)
    wheels = tmp_path / "wheels"
    pip = [sys.executable, "-m", "pip"]
    r = subprocess.run(pip + ["wheel", "-q", "--no-build-isolation", "--no-deps", "-w", str(wheels), str(src)],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run(pip + ["download", "-q", "--only-binary=:all:", "-d", str(wheels), "cffi", "jsonschema",
                              "jeepney", "pyroute2"], capture_output=True, text=True, timeout=900)
    if r.returncode != 0:
        pytest.skip("the dependencies' wheels cannot be fetched here: " + r.stderr.strip()[-300:])

    venv = tmp_path / "venv"
    subprocess.run([other, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    r = subprocess.run(pip + ["--python", str(venv / "bin" / "python"), "install", "-q", "--no-index",
                              "--find-links", str(wheels), "ociruntime"],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    program = venv / "bin" / "ociruntime"
    if _has_static_libpython():
        assert _is_program(program), "the script was installed instead of the program"
    before = _tree(venv)

    hide = os.path.realpath(sys.base_prefix)
    rt = helpers.Runtime(_hidden(program, hide, tmp_path / "hidden"), runtime.root, runtime.token, "moved",
                         label="moved")
    runtime.peers.append(rt)
    # the hiding works: the building interpreter is not there for the program
    seen = subprocess.run(["unshare", "-m", "--propagation", "private", "--", "sh", "-c",
                           "mount -t tmpfs ociruntime-test-hide \"$0\" && ls -A \"$0\"", hide],
                          capture_output=True, text=True, timeout=30)
    assert seen.returncode == 0 and seen.stdout == "", seen
    out = _every_command(rt, bundle, tmp_path)
    assert out["version"].startswith("ociruntime version")
    # the interpreter built into the program is not this installation's: it runs its own
    assert f"python: {VERSION}." in out["version"] and "(built into the program)" not in out["version"], out
    assert str(venv / "bin") in out["version"], out["version"]
    assert out["exec"] == "42\n"
    assert out["run"] == "1\n"
    assert _tree(venv) == before, "a command wrote into the installation"


def test_nothing_is_written_into_the_installation(runtime, bundle, tmp_path):
    """Issue 22: the installation the tests run is unchanged by every command, containers too."""
    if runtime.name != "ociruntime":
        pytest.skip("checks ociruntime's own installation")
    where = _installation_of(runtime.bin)
    site = [p for p in (os.path.join(where, "lib"), os.path.join(where, "bin")) if os.path.isdir(p)]
    before = {p: _tree(p) for p in site}
    _every_command(runtime, bundle, tmp_path)
    after = {p: _tree(p) for p in site}
    changed = sorted(f"{p}/{rel}" for p in site for rel in set(before[p]) ^ set(after[p]) |
                     {r for r in before[p].keys() & after[p].keys() if before[p][r] != after[p][r]})
    assert not changed, changed[:10]


def test_the_program_runs_the_frozen_package_and_opens_no_bytecode(runtime, bundle, tmp_path):
    """The program runs the package's modules from its own frozen copy: a container's lifecycle
    reads none of the package's .py or .pyc files (strace), and no file is opened for writing
    under the installation."""
    if runtime.name != "ociruntime":
        pytest.skip("checks ociruntime's program")
    if not _is_program(runtime.bin):
        pytest.skip("this Python has no static libpython: the command is the script")
    if not shutil.which("strace"):
        pytest.skip("strace is not installed")
    where = _installation_of(runtime.bin)
    assert "(built into the program)" in runtime.run("--version", check=True).out
    log = tmp_path / "strace"
    tracer = tmp_path / "traced"
    # the command's own process (not -f: a created container's init would keep strace waiting)
    tracer.write_text("#!/bin/sh\nexec strace -qq -e trace=open,openat,openat2,execve -o %s.$$ %s \"$@\"\n"
                      % (log, runtime.bin))
    tracer.chmod(0o755)
    rt = helpers.Runtime(str(tracer), runtime.root, runtime.token, "traced", label="traced")
    runtime.peers.append(rt)
    b = bundle(*LONG_RUNNING)
    cid = rt.create(b)
    rt.start(cid)
    assert rt.state(cid)["status"] == "running"
    rt.run("exec", cid, "true", check=True)
    rt.kill(cid, "KILL", check=True)
    rt.wait_status(cid, "stopped")
    rt.delete(cid, check=True)
    lines = []
    for f in tmp_path.glob("strace.*"):
        lines += f.read_text().splitlines()
    assert len(lines) > 20, "strace recorded nothing"
    # the program is the interpreter: it runs no other (the installation it was built with)
    assert not [ln for ln in lines if ln.startswith("execve(") and "ociruntime" not in ln.split(",")[0]], lines[:3]
    package = [ln for ln in lines if "/ociruntime/" in ln and (".py\"" in ln or ".pyc\"" in ln)]
    assert not package, package[:5]
    writes = [ln for ln in lines if where + "/" in ln and ("O_WRONLY" in ln or "O_RDWR" in ln or "O_CREAT" in ln)]
    assert not writes, writes[:5]


@pytest.mark.ociruntime_only
def test_the_callers_python_environment_does_not_reach_the_runtime(runtime, bundle, tmp_path):
    """PYTHONPATH, PYTHONHOME, PYTHONSTARTUP, PYTHONINSPECT and the like are the caller's: the
    runtime (root, entering containers) runs isolated from them, as `python -I` would."""
    if not _is_program(runtime.bin):
        pytest.skip("the command is the script (no static libpython): the caller's python starts it")
    evil = tmp_path / "evil"
    evil.mkdir()
    marker = tmp_path / "imported"
    payload = f"open({str(marker)!r}, 'a').write(__name__ + '\\n')\n"
    for name in ("_json", "jsonschema", "posixpath", "ociruntime", "sitecustomize", "usercustomize"):
        (evil / f"{name}.py").write_text(payload)
    env = dict(os.environ, PYTHONPATH=str(evil), PYTHONSTARTUP=str(evil / "_json.py"), PYTHONINSPECT="1",
               PYTHONHOME="/nonexistent", PYTHONWARNINGS="error", PYTHONSAFEPATH="0")
    b = bundle("sh", "-c", "echo inside")
    cid = runtime.new_id()
    r = runtime.run("run", "--bundle", b, cid, env=env)
    assert r.rc == 0, r.err
    assert r.out == "inside\n"
    runtime.refused(runtime.run("state", cid, env=env), "container does not exist")  # gone after run
    assert not marker.exists(), marker.read_text()


@pytest.mark.ociruntime_only
def test_without_a_standard_library_the_program_says_so_in_one_line(runtime, tmp_path):
    """The program copied where no Python installation is found: one line that says what is
    missing and where to look, exit 1, no traceback, no fatal-error dump."""
    if not _is_program(runtime.bin):
        pytest.skip("this Python has no static libpython: the command is the script")
    lonely = tmp_path / "nowhere" / "bin" / "ociruntime"
    lonely.parent.mkdir(parents=True)
    shutil.copy2(runtime.bin, lonely)
    # every python{VERSION} standard library of this machine under a tmpfs (the merged /usr's
    # /lib/pythonX.Y is /usr/lib's), in a private mount namespace
    stdlibs = {os.path.realpath(os.path.dirname(p)) for p in (
        os.path.join(sys.base_prefix, "lib", "python" + VERSION, "os.py"),
        f"/usr/lib/python{VERSION}/os.py", f"/usr/local/lib/python{VERSION}/os.py") if os.path.exists(p)}
    hide = " && ".join(f"mount -t tmpfs ociruntime-test-hide {d}" for d in sorted(stdlibs))
    r = subprocess.run(["unshare", "-m", "--propagation", "private", "--", "sh", "-c",
                        f"{hide} && exec env -i PATH=\"$1\" \"$0\" --version", str(lonely),
                        str(tmp_path / "no-such-dir")], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith(f"ociruntime: cannot find the standard library of Python {VERSION}"), lines
    assert "README" in lines[0]
    assert "Traceback" not in r.stderr and "Fatal Python error" not in r.stderr


@pytest.mark.ociruntime_only
@pytest.mark.parametrize("locale", ["C", "C.UTF-8"])
def test_paths_and_messages_are_utf8_as_with_python(runtime, tmp_path, locale):
    """In the C locale python coerces it and runs in UTF-8 mode (PEP 538, 540); so does the
    program: a path with é in an error message is written as UTF-8, not as '??'."""
    missing = tmp_path / "bundlé"
    r = subprocess.run([runtime.bin, "--root", runtime.root, "create", "--bundle", str(missing), runtime.new_id()],
                       capture_output=True, timeout=30, env={"PATH": "/usr/bin:/bin", "LC_ALL": locale})
    assert r.returncode != 0
    assert str(missing).encode() in r.stderr, r.stderr
    assert r.stderr.count(b"\n") == 1 and b"Traceback" not in r.stderr
