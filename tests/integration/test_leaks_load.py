"""Load (issue 19): 200 containers created and started in parallel batches of 20, then `kill`,
`state` and `delete --force` interleaved from 4 processes.  Every command either succeeds or
fails with one clear line (no traceback), none hangs, and afterwards nothing is left: no state,
cgroup, mount or process, and no fd of the runtime (no process holds a file of the state root,
the test itself holds no more fds than before).  A quarter of the containers share the host's pid
namespace (what their init started outlives it: `kill` signals the init only), a quarter have a
process started by `exec --detach`; the test reaps what is reparented to it, as a container
manager does.

A bounded-time test, not a benchmark (marked `load`: `-m "not load"` leaves it out of a quick run;
CI's full suite runs it).  Also run against runc."""

import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

import helpers
from helpers import cgroups_named, mounts_under, pid_alive, processes_rooted_under

pytestmark = pytest.mark.load

N, BATCH, WORKERS = 200, 20, 4
DEADLINE = 180  # seconds for the whole test: a command that hangs fails it (each has its own 60 s)
# what a racing command may answer (runc's words and ociruntime's)
EXPECTED_REFUSALS = ("container does not exist", "container not running", "no such process")

WORKER = r"""
import json, random, subprocess, sys
binary, root, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open(sys.argv[4]) as f:
    ids = json.load(f)
rng = random.Random(seed)
out = []
for cid in rng.sample(ids, len(ids)):
    for op in rng.sample(["kill", "state", "delete"], 3):
        argv = {"kill": ["kill", cid, "KILL"], "state": ["state", cid], "delete": ["delete", "--force", cid]}[op]
        try:
            p = subprocess.run([binary, "--root", root] + argv, stdin=subprocess.DEVNULL, capture_output=True,
                               timeout=60)
            out.append([op, cid, p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")])
        except subprocess.TimeoutExpired:
            out.append([op, cid, "hang", "", ""])
json.dump(out, sys.stdout)
"""


class Reaper(threading.Thread):
    """Reaps the container processes reparented to the test (the subreaper) while it waits for
    the workers: the init of a pid namespace is gone only once the zombies of its tasks are
    reaped.  Only those (sh, sleep): the runtime commands are subprocess's to wait for."""

    def __init__(self):
        super().__init__(daemon=True)
        self.done = threading.Event()
        self.start()

    def run(self):
        while not self.done.wait(0.05):
            for pid, state in helpers.children():
                if state in "ZX" and (helpers.proc_status(pid) or {}).get("Name") in ("sh", "sleep"):
                    try:
                        os.waitpid(pid, os.WNOHANG)
                    except ChildProcessError:
                        pass

    def stop(self):
        if not self.done.is_set():
            self.done.set()
            self.join()


def _fds():
    return sorted(os.listdir("/proc/self/fd"))


def _holders(prefix):
    """(pid, fd target) of every open fd on a file under ``prefix``, in every process."""
    found = []
    for pid in helpers.all_pids():
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith(prefix):
                found.append((pid, target))
    return found


def _check(r, what, refusals=()):
    """A command that succeeded, or failed with one clear line (one of ``refusals``)."""
    assert r[2] != "hang", f"{what} hung"
    if r[2] == 0:
        return
    lines = r[4].strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r[4], (what, r)
    assert any(w in lines[0] for w in refusals), (what, r)


def test_200_containers_under_load(runtime, bundle, tmp_path, request):
    t0 = time.monotonic()
    fds_before = _fds()
    rt = helpers.Runtime(runtime.bin, tmp_path / "root", runtime.token, "load", label="load")
    runtime.peers.append(rt)
    os.makedirs(rt.root)
    bundles = []
    for host_pid in (False, True):
        b = bundle("sh", "-c", "trap 'exit 0' TERM; sleep 1000 & sleep 1000 & wait")
        b.config["root"]["readonly"] = True
        if host_pid:
            b.config["linux"]["namespaces"] = [ns for ns in b.config["linux"]["namespaces"] if ns["type"] != "pid"]
        os.fspath(b)
        bundles.append(b.path)
    ids = [rt.new_id() for _ in range(N)]

    def create_start(i):
        cid = ids[i]
        r = rt.run("create", "--bundle", bundles[i % 4 == 0], cid, timeout=60)
        if r.rc == 0:
            r = rt.run("start", cid, timeout=60)
        if r.rc == 0 and i % 4 == 1:
            r = rt.run("exec", "--detach", cid, "sleep", "1000", timeout=60)
        return cid, r

    reaper = Reaper()
    request.addfinalizer(reaper.stop)
    with ThreadPoolExecutor(BATCH) as pool:
        for i in range(0, N, BATCH):
            for cid, r in pool.map(create_start, range(i, i + BATCH)):
                assert r.rc == 0, (cid, r)
    listed = json.loads(rt.run("list", "--format", "json", check=True).out)
    assert sorted(s["id"] for s in listed) == sorted(ids) and {s["status"] for s in listed} == {"running"}
    t_started = time.monotonic() - t0

    (tmp_path / "ids.json").write_text(json.dumps(ids))
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, rt.bin, rt.root, str(seed), tmp_path / "ids.json"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
               for seed in range(WORKERS)]
    results = []
    try:
        for w in workers:
            try:
                out, err = w.communicate(timeout=max(10, DEADLINE - (time.monotonic() - t0)))
            except subprocess.TimeoutExpired:
                pytest.fail(f"the workers' kill, state and delete of {N} containers ran past {DEADLINE}s "
                            f"(create and start took {t_started:.0f}s)")
            assert w.returncode == 0, err
            results += json.loads(out)
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.wait()
    assert len(results) == WORKERS * N * 3
    for op, cid, rc, out, err in results:
        _check([op, cid, rc, out, err], f"{op} {cid}", EXPECTED_REFUSALS if op != "delete" else ())
        if op == "state" and rc == 0:
            # (paused: a delete --force meanwhile freezes the cgroup around its SIGKILLs, as runc's)
            assert json.loads(out)["status"] in ("running", "stopped", "paused"), out
    # every container was deleted by someone; a last delete --force of each still succeeds
    assert rt.run("list", "-q", check=True).out == ""
    assert os.listdir(rt.root) == []
    with ThreadPoolExecutor(BATCH) as pool:
        for r in pool.map(lambda cid: rt.run("delete", "--force", cid, timeout=60), ids):
            assert r.rc == 0 and r.err == "", r

    reaper.stop()

    # nothing left
    prefix = helpers.ID_PREFIX + runtime.token + "-load"
    assert cgroups_named(prefix) == []
    assert mounts_under(runtime.dirs + [rt.root]) == []
    deadline = time.monotonic() + 10
    while True:
        helpers.reap_zombies()
        live = [p for p, st in helpers.children() if st not in "ZX"]
        live += [p for p in processes_rooted_under(runtime.dirs) if pid_alive(p)]
        if not live or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert live == []
    assert _holders(str(rt.root)) == []
    assert _fds() == fds_before
    took = time.monotonic() - t0
    assert took < DEADLINE, f"{took:.0f}s (create and start of {N}: {t_started:.0f}s)"
