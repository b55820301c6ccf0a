"""The README's "Python API" examples, run as they are written, so that they cannot rot: every
```python block of the section, in order, in one namespace, on real containers.  Only their two
paths are replaced (the README's busybox rootfs by the session's, its bundle directory by one of
the test's), and their containers get the session's state root and ids of this test (the README
writes Container("hello"): a fixed name that another run could use at the same time); the blocks'
own asserts check what the processes saw.  conftest's cleanup then checks that nothing is left."""
import re
from pathlib import Path

import pytest

import ociruntime
from ociruntime import api

pytestmark = pytest.mark.ociruntime_only

README = Path(__file__).resolve().parents[2] / "README.md"
ROOTFS = "/srv/busybox-rootfs"          # the README's placeholders
BUNDLE = "/tmp/hello-bundle"


def api_blocks():
    text = README.read_text()
    start = text.index("\n## Python API\n")
    end = text.index("\n## ", start + 1)
    return re.findall(r"^```python\n(.*?)^```$", text[start:end], re.S | re.M)


def test_readme_examples_run(runtime, shared_rootfs, tmp_path, monkeypatch, capsys):
    blocks = api_blocks()
    assert len(blocks) >= 2, "the README's Python API section lost its examples"
    code = "\n".join(blocks)
    for placeholder in (ROOTFS, BUNDLE):
        assert placeholder in code, "the README's examples no longer use %s" % placeholder
    code = code.replace(ROOTFS, str(shared_rootfs)).replace(BUNDLE, str(tmp_path / "hello-bundle"))
    ids = {}

    class Container(api.Container):  # the README's containers, in this session's root, with its ids
        def __init__(self, id, **kw):
            kw.setdefault("root", runtime.root)
            if id not in ids:
                ids[id] = runtime.new_id(id)
            super().__init__(ids[id], **kw)

    monkeypatch.setattr(api, "Container", Container)
    monkeypatch.setattr(ociruntime, "Container", Container, raising=False)
    exec(compile(code, str(README) + ":Python API", "exec"), {"__name__": "readme"})
    assert set(ids) >= {"hello", "sleeper"}
    for cid in ids.values():               # each example deleted what it made
        assert runtime.status(cid) is None
    assert "cannot exec in a paused container" in capsys.readouterr().out
