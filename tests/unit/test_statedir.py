"""ociruntime.container.statedir: state.json and its marshal copy (.state.marshal), which start,
kill and delete load instead of decoding JSON, used only while it holds state.json's very text."""
import marshal
import os

import pytest

from ociruntime import jsonio
from ociruntime.container.statedir import CACHE_FILE, RECORD_FILE, STATE_FILE, StateDir
from ociruntime.errors import StateError

STATE = {"id": "c1", "pid": 42, "bundle": "/b", "rootfs": "/b/rootfs", "created": "2026-01-01T00:00:00Z", "cgroup": {"paths": {"pids": ["/x", "/y", 1]}},
         "config": {"process": {"args": ["sh", "-c", "echo \u00e9"]}, "annotations": {}}, "n": 1.5,
         "none": None, "flag": True}


@pytest.fixture
def sd(tmp_path):
    (tmp_path / "c1").mkdir()
    fd = os.open(tmp_path / "c1", os.O_RDONLY | os.O_DIRECTORY)
    d = StateDir(str(tmp_path), "c1", fd)
    yield d
    d.close()


def test_saved_state_loads_as_the_json_reads(sd, tmp_path):
    sd.save(STATE)
    text = (tmp_path / "c1" / STATE_FILE).read_bytes()
    assert jsonio.loads(text) == STATE  # (the tuple-free state round-trips)
    assert marshal.loads((tmp_path / "c1" / CACHE_FILE).read_bytes()) == (text, jsonio.loads(text))
    assert sd.load() == jsonio.loads(text)
    assert sorted(os.listdir(tmp_path / "c1")) == [CACHE_FILE, STATE_FILE]  # no temp file left


def test_the_copy_is_what_load_returns_while_its_text_is_state_json(sd, tmp_path):
    sd.save(STATE)
    text = (tmp_path / "c1" / STATE_FILE).read_bytes()
    (tmp_path / "c1" / CACHE_FILE).write_bytes(marshal.dumps((text, {"from": "copy"})))
    assert sd.load() == {"from": "copy"}


@pytest.mark.parametrize("damage", ["json changed", "copy garbage", "copy gone", "copy of other"])
def test_otherwise_state_json_is_read(sd, tmp_path, damage):
    sd.save(STATE)
    d = tmp_path / "c1"
    if damage == "json changed":  # e.g. written by another version of the runtime
        (d / STATE_FILE).write_text(jsonio.dumps(dict(STATE, pid=43)))
    elif damage == "copy garbage":
        (d / CACHE_FILE).write_bytes(b"\x00garbage")
    elif damage == "copy gone":
        (d / CACHE_FILE).unlink()
    else:
        (d / CACHE_FILE).write_bytes(marshal.dumps(("not this text", {"pid": 1})))
    want = jsonio.loads((d / STATE_FILE).read_bytes())
    assert sd.load() == want and want["pid"] == (43 if damage == "json changed" else 42)


def test_no_state_json_is_no_container(sd, tmp_path):
    with pytest.raises(StateError, match="container does not exist"):
        sd.load()


def test_a_copy_that_cannot_be_written_fails_nothing_and_is_not_used(sd, tmp_path):
    """The copy is a cache: save succeeds with state.json written, and the old copy (of the old
    text) is passed over."""
    sd.save(STATE)
    (tmp_path / "c1" / ".state.marshal.tmp").mkdir()  # the copy's temp file cannot be made
    sd.save(dict(STATE, pid=7))
    assert sd.load()["pid"] == 7
    assert sorted(os.listdir(tmp_path / "c1")) == [".state.marshal", ".state.marshal.tmp", STATE_FILE]


RECORD = {"id": "c1", "pid": 0, "start_time": 0, "bundle": "/b", "rootfs": "/b/rootfs", "created": "2026-01-01T00:00:00Z",
          "cgroup": {"paths": {"pids": ["/x", "/y", 1, "pids"]}, "created": ["/x/y"]}}


def test_the_record_stands_for_a_create_that_did_not_finish(sd, tmp_path):
    sd.save_record(RECORD)
    assert sd.load() == dict(RECORD, incomplete=True)
    sd.save(STATE)
    assert sd.load() == jsonio.loads(jsonio.dumps(STATE))  # state.json, once there, is the container


@pytest.mark.parametrize("text,why", [(b"", "empty"), (b'{"id": "c1", ', "not JSON"), (b"[]", "not a JSON object"),
                                      (b'{"id": "c1", "pid": "1"}', "no pid")])
def test_damaged_state_json_names_the_file(sd, tmp_path, text, why):
    (tmp_path / "c1" / STATE_FILE).write_bytes(text)
    with pytest.raises(StateError) as e:
        sd.load()
    assert str(e.value).startswith("container c1: %s is damaged (%s" % (tmp_path / "c1" / STATE_FILE, why))
    assert str(e.value).endswith("`delete --force c1` removes the container")


def test_load_any_falls_back_to_the_copy_then_the_record(sd, tmp_path):
    d = tmp_path / "c1"
    sd.save_record(RECORD)
    sd.save(STATE)
    (d / STATE_FILE).write_bytes(b"{")
    state, problem = sd.load_any()
    assert state["pid"] == 42 and "is damaged" in problem  # the copy's (last good) state
    (d / CACHE_FILE).write_bytes(b"garbage")
    state, problem = sd.load_any()
    assert state == dict(RECORD, incomplete=True) and "is damaged" in problem
    (d / RECORD_FILE).write_bytes(b"")
    assert sd.load_any()[0] is None


def test_a_failed_write_names_the_file(sd, tmp_path):
    (tmp_path / "c1" / ".state.json.tmp").mkdir()  # the temp file cannot be made
    with pytest.raises(StateError) as e:
        sd.save(STATE)
    assert str(e.value) == "container c1: write %s: Is a directory" % (tmp_path / "c1" / STATE_FILE)


def test_remove_takes_the_records_last(sd, tmp_path, monkeypatch):
    """A command killed while removing leaves a record, or nothing at all."""
    from ociruntime.container import statedir
    sd.save_record(RECORD)
    sd.save(STATE)
    (tmp_path / "c1" / "exec.fifo").write_text("")
    order = []
    real = statedir.os.unlink
    monkeypatch.setattr(statedir.os, "unlink", lambda p: (order.append(os.path.basename(p)), real(p)))
    sd.remove()
    assert order[-2:] == [RECORD_FILE, STATE_FILE] and not (tmp_path / "c1").exists()
