"""pytest setup shared by every test directory.

Integration tests run real containers with the binary chosen by `--runtime-bin` (or $OCI_RUNTIME_BIN;
default `ociruntime` from PATH), e.g. `python3 -m pytest tests/integration --runtime-bin=/usr/sbin/runc`.
Only the fixtures `runtime`, `bundle` and `net` touch the machine; unit tests need none of this.

After each test that used `runtime`, every container it created is `delete --force`d and the test fails
(error at teardown) if anything is left: a mount under its directories or the state root (made on the
host side), a state dir in the root (and `list`/`state` crashing on it), a live process (the test's
children, those rooted in its directories, those in the session's cgroups), a cgroup or netns named
after the session, a network link in the host's namespace named as ociruntime names a veth of one of
the test's containers, or a write into the shared read-only rootfs.
"""

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import helpers  # noqa: E402

TESTS = Path(__file__).resolve().parent


def pytest_addoption(parser):
    parser.addoption("--runtime-bin", default=os.environ.get("OCI_RUNTIME_BIN", "ociruntime"),
                     help="runtime binary under test (name on PATH or path; default: $OCI_RUNTIME_BIN "
                          "or ociruntime)")


try:
    from ociruntime.security.seccomp import CACHE_DIR as SECCOMP_CACHE
except ImportError:             # the package is not installed: runc under test, say
    SECCOMP_CACHE = "/run/ociruntime-seccomp"


def _listdir(path):
    try:
        return set(os.listdir(path))
    except FileNotFoundError:
        return None


def pytest_configure(config):
    # the runtime's cache of compiled seccomp filters outlives its commands; the tests' entries
    # (and the directory, when they made it) are removed at the end of the session
    config._seccomp_cache_before = _listdir(SECCOMP_CACHE)
    config.addinivalue_line("markers", "ociruntime_only: checks ociruntime's own messages; skipped for "
                                       "other runtimes")
    config.addinivalue_line("markers", "needs_runc: compares with runc; skipped when runc is missing")
    config.addinivalue_line("markers", "load: a bounded-time load test (about a minute here); `-m 'not load'` "
                                       "leaves it out of a quick run, the full suite runs it")
    helpers.make_subreaper()


def _resolve_bin(name):
    if os.sep in name:
        return os.path.abspath(name) if os.access(name, os.X_OK) else None
    # the console script installed beside this interpreter first: PATH may hold only a pyenv shim,
    # which costs a shell and a `pyenv exec` on every call
    path = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", os.defpath)
    found = shutil.which(name, path=path)
    return found and os.path.abspath(found)


@pytest.fixture(scope="session")
def runtime_bin(request):
    want = request.config.getoption("--runtime-bin")
    found = _resolve_bin(want)
    if not found:
        pytest.fail(f"runtime binary {want!r} not found (install the project: tests/setup.sh, or pass "
                    f"--runtime-bin=/usr/sbin/runc)", pytrace=False)
    return found


def pytest_runtest_setup(item):
    # a hook, not an autouse fixture: hypothesis refuses function-scoped fixtures on @given tests
    if item.get_closest_marker("ociruntime_only"):
        want = item.config.getoption("--runtime-bin")
        if helpers.runtime_name(want) != "ociruntime":
            pytest.skip(f"checks ociruntime's own messages ({os.path.basename(want)} under test)")
    if item.get_closest_marker("needs_runc") and not shutil.which("runc"):
        pytest.skip("runc is not installed")


@pytest.fixture(scope="session")
def session_token():
    """Distinguishes this session's ids, cgroups and netns from other sessions on the machine."""
    return secrets.token_hex(3)


@pytest.fixture(scope="session")
def state_root(tmp_path_factory):
    return tmp_path_factory.mktemp("root")


@pytest.fixture(scope="session")
def shared_rootfs(tmp_path_factory):
    """The busybox rootfs, built once; bundles with a read-only root use it in place."""
    path = tmp_path_factory.mktemp("shared") / "rootfs"
    _build_rootfs(path)
    return path


def _build_rootfs(path):
    subprocess.run(["bash", str(TESTS / "mkrootfs.sh"), str(path)], check=True, timeout=120)
    _build_rootfs.snapshots[str(path)] = helpers.snapshot_tree(path)


_build_rootfs.snapshots = {}


@pytest.fixture
def runtime(request, runtime_bin, state_root, session_token, shared_rootfs, tmp_path):
    rt = helpers.Runtime(runtime_bin, state_root, session_token, request.node.name)
    rt.dirs += [str(shared_rootfs), str(tmp_path)]
    yield rt
    problems = _cleanup([rt, *rt.peers], shared_rootfs)
    if problems:
        pytest.fail("left behind by the test (cleaned up now):\n  " + "\n  ".join(problems), pytrace=False)


@pytest.fixture
def runc(request, runtime, tmp_path_factory, session_token):
    """runc itself, with its own state root, beside the runtime under test (tests marked needs_runc).
    The `runtime` fixture's teardown cleans up after both."""
    binary = shutil.which("runc")
    if not binary:
        pytest.skip("runc is not installed")
    root = tmp_path_factory.getbasetemp() / "runc-root"
    root.mkdir(exist_ok=True)
    rt = helpers.Runtime(binary, root, session_token, request.node.name, label="runc")
    runtime.peers.append(rt)
    return rt


@pytest.fixture
def host_cgroups(runtime):
    """helpers.HostCgroups: cgroups the test makes as another tool would (named oci-test-<token>...);
    removed after the test, before the leftover checks (which would report them)."""
    hc = helpers.HostCgroups()
    yield hc
    errors = hc.remove()
    if errors:
        pytest.fail("removing the test's own cgroups: " + "; ".join(errors), pytrace=False)


@pytest.fixture
def net(runtime, tmp_path, request):
    """helpers.Net: a network namespace of the test's (named after the session) in which ``net.rt``
    runs the runtime, so that the bridges, veths and rules of ociruntime's networking are made
    there; the test fails if anything is left there (or on the host: helpers.Net.leftovers) after
    its containers are deleted."""
    if os.geteuid() != 0:
        pytest.skip("container networking needs root")
    name = "%s%s-n%s" % (helpers.ID_PREFIX, runtime.token, secrets.token_hex(3))
    helpers.run_cmd("ip", "netns", "add", name)
    problems = []
    n = None
    try:
        helpers.run_cmd("nsenter", "--net=/run/netns/" + name, "--", "ip", "link", "set", "lo", "up")
        wrapper = tmp_path / "ociruntime-in-netns"
        wrapper.write_text('#!/bin/sh\nexec nsenter --net=/run/netns/%s -- %s "$@"\n' % (name, runtime.bin))
        wrapper.chmod(0o755)
        rt = helpers.Runtime(wrapper, runtime.root, runtime.token, request.node.name, label="ns")
        n = helpers.Net(name, rt, runtime.root)
        yield n
        for cid in rt.ids:
            r = rt.run("delete", "--force", cid, timeout=30)
            if r.rc:
                problems.append("delete --force %s: %s" % (cid, r.err.strip()))
        problems += n.leftovers()
    finally:
        for ns in ([name] + (n.extra_ns if n else [])):
            subprocess.run(["ip", "netns", "delete", ns], timeout=10)
        try:
            os.unlink(os.path.join(runtime.root, "@network.json"))
        except FileNotFoundError:
            pass
    if problems:
        pytest.fail("left in the test's network namespace:\n  " + "\n  ".join(problems), pytrace=False)


@pytest.fixture
def bundle(runtime, tmp_path, shared_rootfs):
    """Factory: bundle(*args, public=False) -> helpers.Bundle in a fresh directory of the test.

    public=True puts it in a world-searchable directory (a user namespace's root cannot search the
    0700 pytest temporary directories)."""
    count = [0]

    def make(*args, public=False):
        count[0] += 1
        name = "bundle" if count[0] == 1 else f"bundle{count[0]}"
        if public:
            base = tempfile.mkdtemp(prefix=helpers.ID_PREFIX + runtime.token + "-", dir="/tmp")
            os.chmod(base, 0o755)
            runtime.dirs.append(base)
            runtime.public_dirs.append(base)
            b = helpers.Bundle(Path(base) / name, shared_rootfs, args or ("sh",))
            b.copy_rootfs()         # the shared one is in a 0700 directory too
            return b
        return helpers.Bundle(tmp_path / name, shared_rootfs, args or ("sh",))

    return make


def _cleanup(runtimes, shared_rootfs, grace=3.0):
    """Delete the test's containers and remove whatever is left; returns what had to be removed.
    Processes get `grace` seconds to go away after the deletes."""
    problems = []
    for rt in runtimes:
        for cid in rt.ids:
            r = rt.run("delete", "--force", cid, timeout=30)
            if r.rc != 0:
                problems.append(f"{rt.name} delete --force {cid}: exit {r.rc}: {r.err.strip()}")
    rt = runtimes[0]

    # processes: the test's children (containers were reparented to us), anything in its rootfs
    # and anything in the session's cgroups (a container sharing the host's pid namespace)
    prefix = helpers.ID_PREFIX + rt.token
    deadline = time.monotonic() + grace
    while True:
        helpers.reap_zombies()  # (a pid namespace's init waits until its tasks' zombies are reaped)
        live = [pid for pid, state in helpers.children() if state not in "ZX"]
        live += [p for p in helpers.processes_rooted_under(rt.dirs) if p not in live and helpers.pid_alive(p)]
        in_cgroups = {p for cg in helpers.cgroups_named(prefix) for p in helpers.cgroup_procs(cg)}
        live += [p for p in sorted(in_cgroups) if p not in live and helpers.pid_alive(p)]
        if not live or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    for pid in live:
        st = helpers.proc_status(pid) or {}
        problems.append(f"process {pid} ({st.get('Name', '?')}) still running")
        helpers.kill_pid(pid)
    for pid in live:
        try:
            helpers.wait_exit(pid, 5)
        except (ChildProcessError, AssertionError):
            pass
    for pid, _ in helpers.children():       # reap exited containers (zombies)
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass

    roots = {r.root: r for r in runtimes}
    for mp in sorted(helpers.mounts_under(rt.dirs + list(roots)), key=len, reverse=True):
        problems.append(f"mount on {mp}")
        try:
            helpers.umount(mp)
        except OSError as e:
            problems.append(f"umount {mp}: {e}")

    for root, owner in roots.items():
        left = os.listdir(root)
        if left:  # what was left must not make `list` or `state` crash
            for argv in [("list",)] + [("state", name) for name in left]:
                r = owner.run(*argv, timeout=30)
                if "Traceback" in r.err or (argv == ("list",) and r.rc != 0):
                    problems.append(f"{owner.name} {' '.join(argv)} on what was left: exit {r.rc}: {r.err.strip()}")
        for name in left:
            problems.append(f"state dir {root}/{name}")
            shutil.rmtree(os.path.join(root, name), ignore_errors=True)

    for cg in helpers.cgroups_named(prefix):
        problems.append(f"cgroup {cg}")
        err = helpers.remove_cgroup(cg)
        if err:
            problems.append(err)

    for ns in helpers.netns_named(prefix):
        problems.append(f"network namespace {ns}")
        subprocess.run(["ip", "netns", "delete", ns], timeout=10)

    # the host ends of veths ociruntime names after the test's containers (helpers.runtime_link_name)
    for r in runtimes:
        for link in helpers.runtime_links_on_host(r.root, r.ids):
            problems.append(f"network link {link} in the host's namespace")
            subprocess.run(["ip", "link", "delete", link], timeout=10)

    for d in rt.public_dirs:
        if not helpers.mounts_under([d]):
            shutil.rmtree(d, ignore_errors=True)

    if helpers.snapshot_tree(shared_rootfs) != _build_rootfs.snapshots[str(shared_rootfs)]:
        problems.append(f"the shared read-only rootfs {shared_rootfs} was modified")
        if not helpers.mounts_under([str(shared_rootfs)]):
            shutil.rmtree(shared_rootfs)
            _build_rootfs(shared_rootfs)
    return problems


def pytest_unconfigure(config):
    before = getattr(config, "_seccomp_cache_before", set())
    after = _listdir(SECCOMP_CACHE)
    if after is None:
        return
    for name in after - (before or set()):
        try:
            os.unlink(os.path.join(SECCOMP_CACHE, name))
        except FileNotFoundError:
            pass
    if before is None:
        try:
            os.rmdir(SECCOMP_CACHE)
        except OSError:         # another session's entries: theirs to remove
            pass
