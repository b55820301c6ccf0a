"""What each lifecycle command imports (start-up latency is a feature: `import os` alone is ~1.6 ms,
json/re/enum several more).  The commands run through an entry script like the installed one that
records sys.modules when the command ends (cli.finish), on real containers; besides the package
and what the interpreter loads at start-up, only the modules listed here may be imported.  They
run both as a -IS script and as the `ociruntime` program (cext/launcher.c, with the installed
entry script), where none of them may install importlib's path finder (cext/lazy.py)."""
import sys
from pathlib import Path

import pytest

import helpers
from helpers import LONG_RUNNING, Runtime

REPO = Path(__file__).resolve().parents[2]

# beyond the interpreter's own start-up modules (python -I -S -c pass)
# (errno's module is ~70 us to import and _stat's ~40: the package names the few errno values it
# needs where an error path does not import it, and the file types, ociruntime.S_IF*)
ALLOWED = {
    "create": {"_json"},
    "run": {"_json"},
    "start": {"fcntl", "select"},
    "state": {"_json"},
    "exec": {"_json"},
    "kill": {"fcntl"},
    "delete": {"fcntl", "select"},
}

# package modules a command does not need here: delete of a stopped container removes its
# cgroups, and state and kill of a running one see whether they are frozen, without the cgroups
# package (ociruntime/cgroupdirs.py); start touches none, create only the package
NOT_NEEDED = {
    "create": {"ociruntime.cgroupdirs"},
    "delete": {"ociruntime.cgroups"},
    "state": {"ociruntime.cgroups"},
    "kill": {"ociruntime.cgroups"},
    "start": {"ociruntime.cgroups", "ociruntime.cgroupdirs"},
}
# and, as the program (python's own start-up imports time), the time module: the log imports it
# to write a line, state.json's timestamp at create
PROGRAM_NOT_NEEDED = {"start": {"time"}, "delete": {"time"}}

# commands that make no stream here: the program (cext/lazy.py) makes none, loads no codec and
# no _io (cffi's backend imported it when the shim was bound with cffi); state prints its JSON
# with posix calls (cli.write_ascii)
QUIET = ("create", "start", "kill", "delete", "run", "exec", "state")

ENTRY = """\
import gc, sys
gc.disable()
sys.path.insert(0, {repo!r})
sys.path.extend({site!r})
from ociruntime import _pack
_pack.install(sys.argv[1:])
import ociruntime.cli as cli
def finish(code, _finish=cli.finish):
    command = next(a for a in sys.argv[1:] if a in _pack.COMMANDS)
    with open({out!r} + "/" + command, "a") as f:
        f.write(" ".join(sorted(sys.modules)) + "\\n")
    _finish(code)
cli.finish = finish
finish(cli.main(sys.argv[1:]))
"""


# the end of the installed entry script, recording (posix: no stream, no codec) as ENTRY does
PROGRAM_END = """\
import ociruntime.cli as cli
def finish(code, _finish=cli.finish):
    import posix
    command = next(a for a in sys.argv[1:] if a in _pack.COMMANDS)
    fd = posix.open({out!r} + "/" + command, posix.O_WRONLY | posix.O_APPEND | posix.O_CREAT, 0o644)
    posix.write(fd, (" ".join(sorted(sys.modules)) + "\\n").encode())
    posix.close(fd)
    _finish(code)
cli.finish = finish
finish(main(sys.argv[1:]))
"""


@pytest.fixture(params=["script", "program"])
def recorded(request, runtime, tmp_path):
    """A Runtime running the package through the recording entry script, cleaned up with `runtime`."""
    out = tmp_path / "modules"
    out.mkdir()
    if request.param == "program":
        script = request.getfixturevalue("build")(
            helpers.entry_script(str(REPO), PROGRAM_END.format(out=str(out))), "ociruntime-recorded")
    else:
        site = [p for p in sys.path if p.endswith(("site-packages", "dist-packages"))]
        script = tmp_path / "ociruntime-recorded"
        script.write_text("#!%s -IS\n" % sys.executable + ENTRY.format(repo=str(REPO), site=site, out=str(out)))
        script.chmod(0o755)
    rt = Runtime(script, runtime.root, runtime.token, "imports", label="rec")
    runtime.peers.append(rt)
    return rt, out, request.param


def _baseline():
    import subprocess
    code = "import sys; print(' '.join(sys.modules))"
    return set(subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True,
                              check=True).stdout.split())


def test_lifecycle_commands_import_only_what_they_need(recorded, bundle):
    rt, out, how = recorded
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

    base = _baseline() | {"gc", "__main__", "_ociruntime_shim"}  # the program's own (built in)
    for command, allowed in ALLOWED.items():
        runs = (out / command).read_text().splitlines()
        assert runs, command
        for line in runs:
            mods = set(line.split())
            assert "ociruntime.cli." + command in mods
            extra = {m for m in mods - base - allowed if m != "ociruntime" and not m.startswith("ociruntime.")}
            assert not extra, "%s imported %s" % (command, sorted(extra))
            assert not mods & NOT_NEEDED.get(command, set()), command
            assert "ociruntime.cli.help" not in mods, command  # help texts: for help and usage errors
            if how == "program":
                assert not {"_frozen_importlib_external", "zipimport"} & mods, command
                assert not mods & PROGRAM_NOT_NEEDED.get(command, set()), command
                if command in QUIET:
                    assert not {"encodings", "codecs", "_io"} & mods, command
                # the shim's binding is built in: its library is not loaded
                assert "ociruntime._shim" not in mods, command
                # flock and poll are the built-in shim's (cext/shimmodule.c): no fcntl, no select
                assert not {"fcntl", "select"} & mods, command
