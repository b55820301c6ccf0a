"""Rules the sources keep (issue 22): the C files and setup.py's link steps use only CPython's
public API, and the sources' comments give reasons, not timings (those are in docs/NOTES.md and
the commit messages)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
C_FILES = sorted((ROOT / "cext").glob("*.[ch]"))
PY_FILES = sorted((ROOT / "ociruntime").rglob("*.py")) + [ROOT / "setup.py", ROOT / "tools" / "ociruntime"] + \
    sorted((ROOT / "cext").glob("*.py"))

# a private name of CPython's: _Py..., _PyObject_..., Py_BUILD_CORE, the internal headers
PRIVATE = re.compile(r"\b_Py\w*|\bPy_BUILD_CORE\w*|\binternal/|\bpycore_\w+")
# what the old launcher's link needed to replace interpreter functions
LINK_TRICKS = ("--allow-multiple-definition", "-Wl,--wrap", "--defsym", "-z muldefs", "-rpath")
# a duration in a source: "0.3 ms", "70 us", "12ms" (not a quoted format example such as "100ms")
TIMING = re.compile(r"(?<![\w\"'])\d+(?:\.\d+)?\s?(?:ms|us|µs|ns|msec|usec|milliseconds?|microseconds?)\b")


def test_there_are_sources_to_check():
    names = {p.name for p in C_FILES}
    assert {"launcher.c", "shim.c", "shim.h", "trampoline.c"} <= names, names
    assert len(PY_FILES) > 50


def test_c_sources_use_only_the_public_api():
    found = [f"{p.name}:{n}: {line.strip()}" for p in C_FILES
             for n, line in enumerate(p.read_text().splitlines(), 1) if PRIVATE.search(line)]
    assert found == []


def test_the_shim_is_built_against_the_stable_abi():
    # the parts of it that call Python (the fork protocol) use the limited API, as the binding
    assert re.search(r"^#define Py_LIMITED_API 0x030b0000$", (ROOT / "cext" / "shim.c").read_text(), re.M)


def test_setup_links_with_no_private_tricks():
    text = (ROOT / "setup.py").read_text()
    assert [t for t in LINK_TRICKS if t in text] == ["-rpath"]  # named once: the run paths it drops
    assert "Py_BUILD_CORE" not in text
    assert "a.startswith((\"-Wl,-rpath\"" in text


def test_sources_state_no_timings():
    found = [f"{p.relative_to(ROOT)}:{n}: {line.strip()}" for p in PY_FILES + C_FILES
             for n, line in enumerate(p.read_text().splitlines(), 1) if TIMING.search(line)]
    assert found == []


def test_the_timing_rule_sees_what_it_looks_for():
    assert TIMING.search("# a write costs 0.3 ms here")
    assert TIMING.search("/* ~70 us a module */")
    assert TIMING.search("# 12ms saved")
    assert not TIMING.search('"""Go\'s time.ParseDuration: "5s", "100ms", "1m30s"."""')
    assert PRIVATE.search("_PyRuntime.main_thread = 0;")
    assert PRIVATE.search('#include "internal/pycore_runtime.h"')
    assert not PRIVATE.search("static const struct _frozen OCI_FROZEN[];")
