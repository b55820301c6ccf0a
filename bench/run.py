#!/usr/bin/env python3
"""Side-by-side benchmark of ociruntime, runc and crun on one busybox bundle (a benchmark, not a test).

    sudo python3 bench/run.py [-n 15] [--rounds 3] [--ociruntime PATH] [--runc PATH] [--crun PATH]

Measured per runtime, interleaved (every iteration runs each runtime once, in a rotating order):

* run      `RT run` of /bin/true: create, start, wait and delete in one command;
* create / start / delete, timed separately as containerd's runc shim drives them
  (`--log F --log-format json create --bundle B --pid-file P ID`, `start ID`, the exit reaped by
  the caller, `delete ID`), and their sum;
* exec     `RT exec ID /bin/true` into a running container, and `RT state ID`;
* 50 containers in sequence (`run` of /bin/true 50 times) and two parallel streams of 25;
* create peak RSS: ru_maxrss of the create process (wait4), the process itself and the helpers it
  reaped, not the container's init, which outlives it;
* init RSS: VmRSS (and Pss, from smaps_rollup) of the container's init while it waits for start.

For each: median, min and max, and the ratios of the medians ociruntime/runc and ociruntime/crun.
`--baseline PATH` adds another ociruntime build (e.g. main's, installed elsewhere), interleaved with
the others in every iteration, and the ratio ociruntime/baseline: a change measured A/B in one run.

crun 1.8 refuses a hybrid cgroup layout whose cgroup2 mount has controllers, so everything runs in a
private mount namespace (`unshare -m`) where an empty tmpfs covers /sys/fs/cgroup/unified: the three
runtimes see the same (v1) layout.  The bundle, the state roots and the logs are on a tmpfs of that
namespace; every container is deleted at the end (also after a failure or ^C), so nothing is left.

ociruntime is the `ociruntime` command installed beside this interpreter (never a pyenv shim).
"""
import argparse
import ctypes
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
NS_MARK = "OCIRUNTIME_BENCH_NS"
ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
UNIFIED = "/sys/fs/cgroup/unified"

# targets of issue 6: (row, limit, kind) — ratio of medians against runc, or an absolute value
TARGETS = [
    ("run /bin/true", 0.7, "runc"),
    ("create+start+delete", 0.8, "runc"),
    ("exec /bin/true", 1.0, "runc"),
    ("50 in sequence", 0.8, "runc"),
    ("init RSS waiting (MB)", 6.0, "abs"),
    ("run /bin/true", 2.0, "crun"),
]


def die(msg):
    sys.stderr.write("bench: %s\n" % msg)
    sys.exit(1)


# -- setting the stage ---------------------------------------------------------------------------
def enter_private_namespace():
    """Re-run this script in a private mount namespace (once)."""
    if os.environ.get(NS_MARK) == "1":
        return
    unshare = shutil.which("unshare")
    if not unshare:
        die("unshare (util-linux) is needed")
    env = dict(os.environ, **{NS_MARK: "1"})
    os.execve(unshare, [unshare, "-m", "--propagation", "private", "--", sys.executable,
                        os.path.abspath(__file__)] + sys.argv[1:], env)


def mount(*args):
    subprocess.run(["mount"] + list(args), check=True, env=ENV)


def cover_unified():
    """An empty tmpfs over /sys/fs/cgroup/unified (this namespace only), when it is a cgroup2 mount
    with controllers (what crun 1.8 refuses)."""
    try:
        with open(os.path.join(UNIFIED, "cgroup.controllers")) as f:
            if not f.read().strip():
                return "unchanged (no controllers in %s)" % UNIFIED
    except OSError:
        return "unchanged (no cgroup2 at %s)" % UNIFIED
    mount("-t", "tmpfs", "-o", "nosuid,nodev,noexec,size=64m,mode=0755", "ociruntime-bench", UNIFIED)
    return "empty tmpfs over %s" % UNIFIED


def find_ociruntime(given):
    if given:
        path = os.path.abspath(given)
    else:
        path = os.path.join(os.path.dirname(sys.executable), "ociruntime")
        if not os.access(path, os.X_OK):
            path = shutil.which("ociruntime") or ""
    if not path or not os.access(path, os.X_OK):
        die("ociruntime not found beside %s (pip install -e %s), or give --ociruntime" % (sys.executable, REPO))
    with open(path, "rb") as f:
        head = f.read(4096)
    if b"pyenv" in head and head.startswith(b"#!") and b"python" not in head.split(b"\n", 1)[0]:
        die("%s is a pyenv shim (a shell script): give the real script with --ociruntime" % path)
    return path


def make_bundles(work, runc):
    rootfs = os.path.join(work, "rootfs")
    subprocess.run(["bash", os.path.join(REPO, "tests", "mkrootfs.sh"), rootfs], check=True, env=ENV,
                   stdout=subprocess.DEVNULL)
    tmpl = os.path.join(work, "spec")
    os.mkdir(tmpl)
    subprocess.run([runc, "spec"], cwd=tmpl, check=True, env=ENV)
    with open(os.path.join(tmpl, "config.json")) as f:
        base = json.load(f)
    bundles = {}
    for name, args in (("true", ["/bin/true"]), ("sleep", ["/bin/sleep", "100000"])):
        cfg = json.loads(json.dumps(base))
        cfg["process"]["terminal"] = False
        cfg["process"]["args"] = args
        cfg["root"] = {"path": rootfs, "readonly": True}
        d = os.path.join(work, "bundle-" + name)
        os.mkdir(d)
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(cfg, f, indent=1)
        bundles[name] = d
    return bundles


def version_of(path):
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, env=ENV, timeout=10).stdout
        return out.splitlines()[0] if out else "?"
    except (OSError, subprocess.SubprocessError):
        return "?"


# -- running one command -------------------------------------------------------------------------
class Failed(Exception):
    pass


def spawn(argv, errfile, stdout="/dev/null"):
    """Run argv to completion: (seconds, ru_maxrss in kB)."""
    actions = [(os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
               (os.POSIX_SPAWN_OPEN, 1, stdout, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644),
               (os.POSIX_SPAWN_OPEN, 2, errfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)]
    t0 = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, ENV, file_actions=actions)
    _, status, ru = os.wait4(pid, 0)
    dt = time.perf_counter() - t0
    if status != 0:
        with open(errfile, errors="replace") as f:
            err = f.read().strip()
        raise Failed("%s: exit %d: %s" % (" ".join(argv), os.waitstatus_to_exitcode(status), err))
    return dt, ru.ru_maxrss


def wait_exit(pid, timeout=10.0):
    """Reap (we are a subreaper) or at least outlive the container's init."""
    try:
        os.waitpid(pid, 0)
        return
    except ChildProcessError:
        pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and os.path.exists("/proc/%d" % pid):
        time.sleep(0.001)


def mem_of(pid):
    """(VmRSS, Pss) of a process in MB."""
    rss = pss = float("nan")
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1]) / 1024
    except OSError:
        pass
    return rss, pss


class Runtime:
    def __init__(self, name, path, work):
        self.name, self.path = name, path
        self.root = os.path.join(work, "root-" + name)
        self.log = os.path.join(work, "log-%s.json" % name)
        self.err = os.path.join(work, "err-%s.txt" % name)
        self.work = work
        self.n = 0

    def argv(self, *args, shim=False):
        g = [self.path, "--root", self.root]
        if shim:
            g += ["--log", self.log, "--log-format", "json"]
        return g + list(args)

    def new_id(self, tag):
        self.n += 1
        return "bench-%s-%s-%d" % (self.name, tag, self.n)

    def has_exec(self, errfile):
        try:
            spawn(self.argv("exec", "--help"), errfile)
            return True
        except Failed:
            return False

    def cleanup(self):
        """Delete every container left in this runtime's root."""
        if not os.path.isdir(self.root):
            return []
        left = []
        for cid in sorted(os.listdir(self.root)):
            if not os.path.isdir(os.path.join(self.root, cid)):
                continue
            subprocess.run(self.argv("delete", "--force", cid), env=ENV, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
            if os.path.exists(os.path.join(self.root, cid)):
                left.append(cid)
        return left


# -- the measurements ----------------------------------------------------------------------------
def one_run(rt, bundle, errfile=None, tag="run"):
    cid = rt.new_id(tag)
    dt, _ = spawn(rt.argv("run", "--bundle", bundle, cid), errfile or rt.err)
    return dt


def one_lifecycle(rt, bundle):
    """containerd's sequence: create (pid file, json log), start, reap the init, delete."""
    cid = rt.new_id("cycle")
    pidfile = os.path.join(rt.work, "%s.pid" % cid)
    t_create, _ = spawn(rt.argv("create", "--bundle", bundle, "--pid-file", pidfile, cid, shim=True), rt.err)
    with open(pidfile) as f:
        pid = int(f.read())
    os.unlink(pidfile)
    t_start, _ = spawn(rt.argv("start", cid, shim=True), rt.err)
    wait_exit(pid)
    t_delete, _ = spawn(rt.argv("delete", cid, shim=True), rt.err)
    return {"create": t_create, "start": t_start, "delete": t_delete,
            "create+start+delete": t_create + t_start + t_delete}


def timed_maxrss(trampoline, argv, errfile):
    """ru_maxrss (kB) of argv, run by `busybox time -f %M` (whose figure is scaled, see calibrate)."""
    tool, factor = trampoline
    spawn([tool, "time", "-f", "@maxrss %M"] + argv, errfile)
    with open(errfile) as f:
        lines = [ln for ln in f.read().splitlines() if ln.startswith("@maxrss ")]
    return int(lines[-1].split()[1]) / factor


def calibrate(busybox, errfile):
    """busybox's time multiplies ru_maxrss (kB on Linux) by 4, taking it for pages: compare with what
    a child reports of itself."""
    out = os.path.join(os.path.dirname(errfile), "calibrate.txt")
    spawn([busybox, "time", "-f", "@maxrss %M", sys.executable, "-I", "-S", "-c",
           "import resource; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"], errfile, stdout=out)
    with open(out) as f:
        own = int(f.read())
    with open(errfile) as f:
        told = int([ln for ln in f.read().splitlines() if ln.startswith("@maxrss ")][-1].split()[1])
    return (busybox, 4 if told > 3 * own else 1)


def one_memory(rt, bundle, trampoline):
    """Peak RSS of create and the waiting init's RSS (an untimed create, then delete --force).

    The peak is ru_maxrss as reported by `busybox time`, which forks and reaps create: a process
    this Python starts itself (vfork or fork) inherits the interpreter's high-water RSS at exec.
    """
    cid = rt.new_id("mem")
    pidfile = os.path.join(rt.work, "%s.pid" % cid)
    maxrss = timed_maxrss(trampoline, rt.argv("create", "--bundle", bundle, "--pid-file", pidfile, cid, shim=True),
                          rt.err)
    with open(pidfile) as f:
        pid = int(f.read())
    os.unlink(pidfile)
    rss, pss = mem_of(pid)
    stop_sleeper(rt, cid, pid)
    return {"create peak RSS (MB)": maxrss / 1024, "init RSS waiting (MB)": rss, "init Pss waiting (MB)": pss}


def start_sleeper(rt, bundle):
    cid = rt.new_id("sleeper")
    pidfile = os.path.join(rt.work, "%s.pid" % cid)
    spawn(rt.argv("create", "--bundle", bundle, "--pid-file", pidfile, cid, shim=True), rt.err)
    spawn(rt.argv("start", cid, shim=True), rt.err)
    with open(pidfile) as f:
        return cid, int(f.read())


def stop_sleeper(rt, cid, pid):
    subprocess.run(rt.argv("delete", "--force", cid), env=ENV, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    wait_exit(pid)


def sequence(rt, bundle, count, streams):
    """Wall time of `count` runs split over `streams` parallel streams."""
    errors = []

    def stream(k):
        try:
            for _ in range(count // streams):
                one_run(rt, bundle, errfile="%s.%d" % (rt.err, k), tag="seq%d" % k)
        except Failed as e:
            errors.append(e)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=stream, args=(k,)) for k in range(streams)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return time.perf_counter() - t0


# -- report --------------------------------------------------------------------------------------
ROWS = [  # (row, unit scale, format)
    ("run /bin/true", 1000, "ms"),
    ("create", 1000, "ms"),
    ("start", 1000, "ms"),
    ("delete", 1000, "ms"),
    ("create+start+delete", 1000, "ms"),
    ("exec /bin/true", 1000, "ms"),
    ("state", 1000, "ms"),
    ("50 in sequence", 1000, "ms"),
    ("2 x 25 in parallel", 1000, "ms"),
    ("create peak RSS (MB)", 1, "MB"),
    ("init RSS waiting (MB)", 1, "MB"),
    ("init Pss waiting (MB)", 1, "MB"),
]


def fmt(v):
    return "%.1f" % v if v < 100 else "%.0f" % v


def report(results, names, notes):
    med = {}
    width = 24
    head = "%-*s" % (width, "measure (ms unless MB)")
    for n in names:
        head += " | %-20s" % ("%s med [min-max]" % n)
    others = [n for n in names if n != "ociruntime"]
    for o in others:
        head += " | %9s" % ("oci/" + o)
    lines = [head, "-" * len(head)]
    for row, scale, _ in ROWS:
        if not any(results[n].get(row) for n in names):
            continue
        line = "%-*s" % (width, row)
        for n in names:
            vals = [v * scale for v in results[n].get(row, [])]
            if not vals:
                line += " | %-20s" % "-"
                continue
            m = statistics.median(vals)
            med[(n, row)] = m
            line += " | %-20s" % ("%s [%s-%s]" % (fmt(m), fmt(min(vals)), fmt(max(vals))))
        for o in others:
            a, b = med.get(("ociruntime", row)), med.get((o, row))
            line += " | %9s" % ("%.2f" % (a / b) if a is not None and b else "-")
        lines.append(line)
    print("\n".join(lines))
    for note in notes:
        print(note)
    if "ociruntime" not in names:
        return
    print("\ntargets (issue 6):")
    for row, limit, kind in TARGETS:
        a = med.get(("ociruntime", row))
        if a is None:
            print("  %-40s not measured" % row)
            continue
        if kind == "abs":
            val, what = a, "%s = %.1f (<= %.1f)" % (row, a, limit)
        else:
            b = med.get((kind, row))
            if not b:
                print("  %-40s no %s figure" % (row, kind))
                continue
            val, what = a / b, "%s ociruntime/%s = %.2f (<= %.2f)" % (row, kind, a / b, limit)
        print("  %-60s %s" % (what, "met" if val <= limit else "NOT met"))


# -- main ----------------------------------------------------------------------------------------
def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", "--iterations", type=int, default=15, help="per measurement (default 15)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of the 50-container sequences (default 3)")
    ap.add_argument("--count", type=int, default=50, help="containers per sequence (default 50)")
    ap.add_argument("--ociruntime", help="the ociruntime command (default: beside this interpreter)")
    ap.add_argument("--runc", default="/usr/sbin/runc")
    ap.add_argument("--crun", default=shutil.which("crun", path=ENV["PATH"]) or "/usr/bin/crun")
    ap.add_argument("--only", help="comma-separated runtimes to run (default: all three)")
    ap.add_argument("--baseline", help="another ociruntime command (e.g. main's build), measured beside it")
    ap.add_argument("--skip", default="", help="comma-separated parts to skip: run,cycle,exec,seq")
    ap.add_argument("--no-namespace", action="store_true", help="run in the host's mount namespace as it is")
    opts = ap.parse_args()
    if os.geteuid() != 0:
        die("run as root")
    if not opts.no_namespace:
        enter_private_namespace()
    # a subreaper, as containerd's shim and conmon are: the inits of created containers are ours to reap
    ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)

    cmd = "python3 bench/run.py " + " ".join(sys.argv[1:])
    paths = {"ociruntime": find_ociruntime(opts.ociruntime), "runc": opts.runc, "crun": opts.crun}
    names = [n for n in ("ociruntime", "runc", "crun") if not opts.only or n in opts.only.split(",")]
    if opts.baseline:
        paths["baseline"] = find_ociruntime(opts.baseline)
        names.insert(names.index("ociruntime") + 1 if "ociruntime" in names else 0, "baseline")
    for n in names:
        if not os.access(paths[n], os.X_OK):
            die("%s not found at %s" % (n, paths[n]))
    skip = set(opts.skip.split(",")) - {""}
    notes = []
    layout = cover_unified() if not opts.no_namespace else "host namespace, unchanged"

    work = tempfile.mkdtemp(prefix="ociruntime-bench.")
    if not opts.no_namespace:
        mount("-t", "tmpfs", "-o", "mode=0755", "ociruntime-bench", work)
    rts = {n: Runtime(n, paths[n], work) for n in names}
    try:
        bundles = make_bundles(work, opts.runc)
        trampoline = calibrate(os.path.join(work, "rootfs", "bin", "busybox"), os.path.join(work, "err.txt"))
        print("# %s" % cmd)
        print("# %s, kernel %s, %d CPUs, load %s, %s" % (
            time.strftime("%Y-%m-%d %H:%M"), platform.release(), os.cpu_count(),
            " ".join("%.2f" % x for x in os.getloadavg()), "Python " + platform.python_version()))
        for n in names:
            print("# %-10s %s  (%s)" % (n, paths[n], version_of(paths[n])))
        print("# cgroups: %s; %d iterations, %d rounds of %d containers\n" % (
            layout, opts.iterations, opts.rounds, opts.count))
        results = {n: {} for n in names}

        def add(n, row, v):
            results[n].setdefault(row, []).append(v)

        exec_ok = {}
        sleepers = {}
        if "exec" not in skip:
            for n in names:
                exec_ok[n] = rts[n].has_exec(rts[n].err)
                if exec_ok[n]:
                    sleepers[n] = start_sleeper(rts[n], bundles["sleep"])
                else:
                    notes.append("%s: exec not implemented (`%s exec --help` fails): exec not measured"
                                 % (n, n))
        # warm-up: one of each, not counted
        for n in names:
            if "run" not in skip:
                one_run(rts[n], bundles["true"])
            if "cycle" not in skip:
                one_lifecycle(rts[n], bundles["true"])
        for i in range(opts.iterations):
            order = names[i % len(names):] + names[:i % len(names)]
            for n in order:
                rt = rts[n]
                if "run" not in skip:
                    add(n, "run /bin/true", one_run(rt, bundles["true"]))
                if "cycle" not in skip:
                    for row, v in one_lifecycle(rt, bundles["true"]).items():
                        add(n, row, v)
                    for row, v in one_memory(rt, bundles["true"], trampoline).items():
                        add(n, row, v)
                if n in sleepers:
                    cid = sleepers[n][0]
                    add(n, "exec /bin/true", spawn(rt.argv("exec", cid, "/bin/true"), rt.err)[0])
                    add(n, "state", spawn(rt.argv("state", cid), rt.err)[0])
                elif "exec" not in skip:
                    cid = rt.new_id("state")
                    # state of a created container when exec cannot run one
                    pidfile = os.path.join(work, cid + ".pid")
                    spawn(rt.argv("create", "--bundle", bundles["sleep"], "--pid-file", pidfile, cid), rt.err)
                    add(n, "state", spawn(rt.argv("state", cid), rt.err)[0])
                    with open(pidfile) as f:
                        pid = int(f.read())
                    stop_sleeper(rt, cid, pid)
            sys.stderr.write("\riteration %d/%d" % (i + 1, opts.iterations))
        sys.stderr.write("\n")
        for n, (cid, pid) in list(sleepers.items()):
            stop_sleeper(rts[n], cid, pid)
            del sleepers[n]
        if "seq" not in skip:
            for r in range(opts.rounds):
                order = names[r % len(names):] + names[:r % len(names)]
                for n in order:
                    add(n, "50 in sequence", sequence(rts[n], bundles["true"], opts.count, 1))
                    add(n, "2 x 25 in parallel", sequence(rts[n], bundles["true"], opts.count, 2))
                sys.stderr.write("\rsequence round %d/%d" % (r + 1, opts.rounds))
            sys.stderr.write("\n")
        if opts.count != 50:
            notes.append("(sequences of %d containers, not 50)" % opts.count)
        report(results, names, notes)
    except Failed as e:
        sys.stderr.write("\nbench: failed: %s\n" % e)
        return_code = 1
    except KeyboardInterrupt:
        sys.stderr.write("\nbench: interrupted\n")
        return_code = 130
    else:
        return_code = 0
    finally:
        left = {}
        for n in names:
            l = rts[n].cleanup()
            if l:
                left[n] = l
        while True:  # reap whatever was reparented to us
            try:
                if os.waitpid(-1, os.WNOHANG) == (0, 0):
                    break
            except ChildProcessError:
                break
        if not opts.no_namespace:
            subprocess.run(["umount", "-l", work], env=ENV)
            os.rmdir(work)
        else:
            shutil.rmtree(work, ignore_errors=True)
        if left:
            sys.stderr.write("bench: containers left behind: %s\n" % left)
    sys.exit(return_code)


if __name__ == "__main__":
    main()
