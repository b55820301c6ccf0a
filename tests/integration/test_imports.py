"""What each lifecycle command imports (start-up latency is a feature: json/re/enum cost several
milliseconds each).  The commands run the installed package through an entry like the program's
(ociruntime._program) that records sys.modules when the command ends (cli.finish), on real
containers; besides the package and what the interpreter loads at start-up (python -I -S), only
the modules listed here may be imported."""
import sys
from pathlib import Path

import pytest

from helpers import LONG_RUNNING, Runtime

# beyond the interpreter's own start-up modules (python -I -S -c pass).  The commands that start a
# process in a container load the shim (a cffi module: _cffi_backend), talk to it over a _socket
# pair, bring its lo up with fcntl's ioctl and apply rlimits with resource; the state dir lock is
# fcntl's flock, the waits of start, run and delete select's poll.
SHIM = {"_cffi_backend", "_socket", "fcntl"}
ALLOWED = {
    "create": {"_json", "resource"} | SHIM,
    "run": {"_json", "resource", "select"} | SHIM,
    "start": {"fcntl", "select"},
    "state": {"_json"},
    "exec": {"_json", "resource"} | SHIM,
    "kill": {"fcntl"},
    "delete": {"fcntl", "select"},
}

# package modules a command does not need here: delete of a stopped container removes its
# cgroups, and state and kill of a running one see whether they are frozen, without the cgroups
# package (ociruntime/cgroupdirs.py); start touches none, create only the package
# The features a bundle asks for with annotations (networking, the copy-on-write rootfs:
# container/extras.py) cost a plain container nothing: none of their modules is loaded.
EXTRAS = {"ociruntime.container.extras", "ociruntime.network", "ociruntime.network.rtnl",
          "ociruntime.network.leases", "ociruntime.network.firewall", "ociruntime.rootfs.overlay"}
NOT_NEEDED = {
    "create": {"ociruntime.cgroupdirs"} | EXTRAS,
    "run": EXTRAS,
    "exec": EXTRAS,
    "delete": {"ociruntime.cgroups", "ociruntime._shim"} | EXTRAS,
    "state": {"ociruntime.cgroups", "ociruntime._shim"},
    "kill": {"ociruntime.cgroups", "ociruntime._shim"},
    "start": {"ociruntime.cgroups", "ociruntime.cgroupdirs", "ociruntime._shim"},
}

# the Python API is for programs: the commands call the container/ functions it calls, without
# loading it (ociruntime/api.py: ~0.4 ms a command, docs/NOTES.md "Python API")
API = {"ociruntime.api", "ociruntime.bundle"}

ENTRY = """\
import sys
sys.path.extend({site!r})
import ociruntime.cli as cli
from ociruntime import _program
_finish = cli.finish
def finish(code):
    command = next(a for a in sys.argv[1:] if a in cli.COMMANDS)
    with open({out!r} + "/" + command, "a") as f:
        f.write(" ".join(sorted(sys.modules)) + "\\n")
    _finish(code)
cli.finish = finish
_program.main()
"""


@pytest.fixture
def recorded(runtime, tmp_path):
    """A Runtime running the installed package through the recording entry (as `python -I -S`),
    cleaned up with `runtime`."""
    if runtime.name != "ociruntime":
        pytest.skip("records ociruntime's own imports")
    out = tmp_path / "modules"
    out.mkdir()
    site = [p for p in sys.path if p.endswith(("site-packages", "dist-packages"))]
    script = tmp_path / "ociruntime-recorded"
    script.write_text("#!%s -IS\n" % sys.executable + ENTRY.format(site=site, out=str(out)))
    script.chmod(0o755)
    rt = Runtime(script, runtime.root, runtime.token, "imports", label="rec")
    runtime.peers.append(rt)
    return rt, out


def _baseline():
    import subprocess
    code = "import sys; print(' '.join(sys.modules))"
    return set(subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True,
                              check=True).stdout.split())


def test_lifecycle_commands_import_only_what_they_need(recorded, bundle):
    rt, out = recorded
    b = bundle(*LONG_RUNNING)
    cid = rt.create(b)
    rt.start(cid)
    assert rt.run("exec", cid, "true").rc == 0
    assert rt.state(cid)["status"] == "running"
    assert rt.kill(cid, "KILL").rc == 0
    rt.wait_status(cid, "stopped")
    assert rt.delete(cid).rc == 0
    r = rt.run_container(bundle("true"))
    assert r.rc == 0, r.err

    base = _baseline() | {"gc", "__main__"}
    for command, allowed in ALLOWED.items():
        runs = (out / command).read_text().splitlines()
        assert runs, command
        for line in runs:
            mods = set(line.split())
            assert "ociruntime.cli." + command in mods
            extra = {m for m in mods - base - allowed if m != "ociruntime" and not m.startswith("ociruntime.")}
            assert not extra, "%s imported %s" % (command, sorted(extra))
            assert not mods & NOT_NEEDED.get(command, set()), command
            assert not mods & API, command
            assert "ociruntime.cli.help" not in mods, command  # help texts: for help and usage errors
