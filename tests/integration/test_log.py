"""--log / --log-format: what containerd and podman parse when the runtime fails."""

import json

import pytest

from helpers import LONG_RUNNING, parse_rfc3339


def bad_bundle(bundle):
    b = bundle()
    b.args = []
    return b


def json_lines(path):
    lines = path.read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_error_as_json_line(runtime, bundle, tmp_path):
    log = tmp_path / "log.json"
    r = runtime.run("--log", log, "--log-format", "json", "create", "--bundle", bad_bundle(bundle),
                    runtime.new_id())
    runtime.refused(r)
    entries = json_lines(log)
    errors = [e for e in entries if e["level"] == "error"]
    assert len(errors) == 1
    e = errors[-1]
    assert set(e) >= {"level", "msg", "time"}
    assert e["msg"] and "\n" not in e["msg"]
    parse_rfc3339(e["time"])
    # the same text reaches stderr for callers that read it instead (podman's fallback)
    assert e["msg"] in r.err


def test_unknown_container_logged(runtime, tmp_path):
    log = tmp_path / "log.json"
    r = runtime.run("--log", log, "--log-format", "json", "state", runtime.new_id("nope"))
    runtime.refused(r, "container does not exist")
    (e,) = [e for e in json_lines(log) if e["level"] == "error"]
    assert e["msg"].endswith("container does not exist")


def test_log_appends(runtime, tmp_path):
    log = tmp_path / "log.json"
    log.write_text('{"level":"info","msg":"before","time":"2024-01-01T00:00:00Z"}\n')
    runtime.run("--log", log, "--log-format", "json", "state", runtime.new_id("nope"))
    entries = json_lines(log)
    assert entries[0]["msg"] == "before" and entries[-1]["level"] == "error"


def test_success_log_is_json(runtime, bundle, tmp_path):
    log = tmp_path / "log.json"
    cid = runtime.new_id()
    runtime.run("--log", log, "--log-format", "json", "create", "--bundle", bundle(*LONG_RUNNING), cid,
                check=True)
    runtime.run("--log", log, "--log-format", "json", "start", cid, check=True)
    runtime.run("--log", log, "--log-format", "json", "delete", "--force", cid, check=True)
    for e in json_lines(log):                   # may be empty; whatever is there parses
        assert e["level"] != "error"
        parse_rfc3339(e["time"])


def test_debug_log_is_json(runtime, bundle, tmp_path):
    log = tmp_path / "log.json"
    b = bundle("true")
    runtime.run("--debug", "--log", log, "--log-format", "json", "run", "--bundle", b, runtime.new_id(),
                check=True)
    for e in json_lines(log):
        assert e["level"] in ("debug", "info", "warning")


def test_text_log_format(runtime, bundle, tmp_path):
    log = tmp_path / "log.txt"
    r = runtime.run("--log", log, "create", "--bundle", bad_bundle(bundle), runtime.new_id())
    runtime.refused(r)
    (line,) = [x for x in log.read_text().splitlines() if "level=error" in x]
    assert line.startswith('time="') and ' msg="' in line


def test_json_to_stderr_without_log_file(runtime):
    r = runtime.run("--log-format", "json", "state", runtime.new_id("nope"))
    assert r.rc != 0
    (line,) = r.err.splitlines()
    e = json.loads(line)
    assert e["level"] == "error" and e["msg"].endswith("container does not exist")
    parse_rfc3339(e["time"])


@pytest.mark.ociruntime_only
def test_logged_message_matches_stderr(runtime, bundle, tmp_path):
    log = tmp_path / "log.json"
    r = runtime.run("--log", log, "--log-format", "json", "create", "--bundle", bad_bundle(bundle),
                    runtime.new_id())
    (e,) = json_lines(log)
    assert e["level"] == "error"
    assert e["msg"].endswith("config.json: process.args: [] should be non-empty")
    assert r.err == "ociruntime: config.json: process.args: [] should be non-empty\n"
