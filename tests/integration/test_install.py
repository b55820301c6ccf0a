"""A normal (wheel) install, here into a venv, gets the `ociruntime` program (cext/launcher.c: the
interpreter linked in) and it runs containers as the editable install does: the venv's package,
its bytecode packs, the base installation's site-packages when the venv includes them."""
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_wheel_install_into_a_venv_runs_containers(runtime, bundle, tmp_path):
    if runtime.name != "ociruntime":
        pytest.skip("installs ociruntime itself")
    static = os.path.join(sysconfig.get_config_var("LIBPL") or "", sysconfig.get_config_var("LIBRARY") or "")
    if not static.endswith(".a") or not os.path.isfile(static):
        pytest.skip(f"this interpreter has no static libpython ({static}): setup.py installs the -IS script")
    # a copy of the tracked sources: pip builds in the tree it is given (build/, *.egg-info)
    src = tmp_path / "src"
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    for rel in filter(None, files.decode().split("\0")):
        if (REPO / rel).is_file():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, src / rel)
    venv = tmp_path / "venv"
    # the base's site-packages hold setuptools and wheel: no network, no build isolation
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=120)
    r = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-build-isolation",
                        "--no-deps", str(src)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    exe = venv / "bin" / "ociruntime"
    with open(exe, "rb") as f:
        assert f.read(4) == b"\x7fELF", "the -IS script was installed instead of the program"

    runtime.bin = str(exe)  # the fixture's cleanup and leftover checks use it too
    version = runtime.run("--version")
    assert version.rc == 0 and version.out.startswith("ociruntime version")
    b = bundle("sh", "-c", "echo $$")
    out = runtime.output(b)
    assert out.split("\n")[0] == "1"  # the container's own pid namespace
    # it ran the venv's package (its pack is written beside the venv's copy)
    pkg = venv / "lib" / ("python%d.%d" % sys.version_info[:2]) / "site-packages" / "ociruntime"
    assert list((pkg / "__pycache__").glob("pack.*.run.bin")), "no bytecode pack written for run"
    again = runtime.output(b)
    assert again.split("\n")[0] == "1"
