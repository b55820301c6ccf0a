"""Configs and commands the runtime must refuse: non-zero exit, one line on stderr, nothing left behind.
The exact wording is ociruntime's own (runc's differs), so those checks are ociruntime_only."""

import json
import os

import pytest

from helpers import LONG_RUNNING, cgroups_named


def _empty_args(b):
    b.args = []


def _not_json(b):
    os.fspath(b)
    (b.path / "config.json").write_text('{"ociVersion": "1.0.2", "process": {')


def _no_config(b):
    os.fspath(b)
    (b.path / "config.json").unlink()


def _missing_rootfs(b):
    b.config["root"]["path"] = str(b.path / "no-such-rootfs")


BROKEN = {
    "empty-args": _empty_args,
    "not-json": _not_json,
    "no-config": _no_config,
    "missing-rootfs": _missing_rootfs,
}


def broken_bundle(bundle, case):
    b = bundle(*LONG_RUNNING)
    BROKEN[case](b)
    if case in ("not-json", "no-config"):
        return b.path              # passing the Bundle itself would write a good config.json again
    return b


def assert_nothing_left(runtime, cid):
    assert os.listdir(runtime.root) == []
    assert cgroups_named(cid) == []  # (a refusal from the init comes after they were made)
    r = runtime.run("state", cid)
    runtime.refused(r, "container does not exist")


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_create_refuses(runtime, bundle, case):
    cid = runtime.new_id()
    r = runtime.run("create", "--bundle", broken_bundle(bundle, case), cid)
    runtime.refused(r)
    assert r.out == ""
    assert_nothing_left(runtime, cid)


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_run_refuses(runtime, bundle, case):
    cid = runtime.new_id()
    r = runtime.run("run", "--bundle", broken_bundle(bundle, case), cid)
    runtime.refused(r)
    assert_nothing_left(runtime, cid)


def test_missing_bundle_dir(runtime, tmp_path):
    cid = runtime.new_id()
    r = runtime.run("create", "--bundle", tmp_path / "nope", cid)
    runtime.refused(r, "nope")
    assert_nothing_left(runtime, cid)


@pytest.mark.parametrize("args0", ["oci-test-no-such-program", "/bin/oci-test-missing", "/etc/passwd", "/etc"])
def test_args0_not_executable(runtime, bundle, args0):
    """runc fails at create (it resolves args[0] before waiting for start), others may at start;
    either way start must not succeed and delete --force must leave nothing."""
    cid = runtime.new_id()
    r = runtime.run("create", "--bundle", bundle(args0), cid)
    if r.rc == 0:
        runtime.refused(runtime.run("start", cid))
    else:
        runtime.refused(r, args0)
    r = runtime.run("delete", "--force", cid)
    assert r.rc == 0
    assert_nothing_left(runtime, cid)


def test_run_args0_missing(runtime, bundle):
    cid = runtime.new_id()
    r = runtime.run("run", "--bundle", bundle("oci-test-no-such-program"), cid)
    runtime.refused(r, "oci-test-no-such-program")
    assert_nothing_left(runtime, cid)


def test_missing_cwd_parent_is_file(runtime, bundle):
    b = bundle("true")
    b.config["process"]["cwd"] = "/etc/passwd/sub"
    cid = runtime.new_id()
    r = runtime.run("run", "--bundle", b, cid)
    runtime.refused(r, ours=("/etc/passwd/sub",))
    assert_nothing_left(runtime, cid)


def test_relative_cwd_refused(runtime, bundle):
    b = bundle("true")
    b.config["process"]["cwd"] = "tmp"
    cid = runtime.new_id()
    r = runtime.run("run", "--bundle", b, cid)
    runtime.refused(r, ours=("cwd",))
    assert_nothing_left(runtime, cid)


def test_user_namespace_without_mappings_refused(runtime, bundle):
    b = bundle("true")
    b.config["linux"]["namespaces"].append({"type": "user"})
    cid = runtime.new_id()
    r = runtime.run("run", "--bundle", b, cid)
    runtime.refused(r, ours=("uidMappings",))
    assert_nothing_left(runtime, cid)


# ---- ociruntime's own messages


@pytest.mark.ociruntime_only
def test_empty_args_message(runtime, bundle):
    r = runtime.run("create", "--bundle", broken_bundle(bundle, "empty-args"), runtime.new_id())
    assert r.rc == 1
    assert runtime.refused(r) == "ociruntime: config.json: process.args: [] should be non-empty"


@pytest.mark.ociruntime_only
@pytest.mark.parametrize("case,words", [
    ("not-json", ["config.json"]),
    ("no-config", ["config.json"]),
    ("missing-rootfs", ["no-such-rootfs"]),
])
def test_refusal_messages(runtime, bundle, case, words):
    r = runtime.run("create", "--bundle", broken_bundle(bundle, case), runtime.new_id())
    assert r.rc == 1
    runtime.refused(r, *words)


@pytest.mark.ociruntime_only
def test_unsupported_oci_version_refused(runtime, bundle):
    """runc 1.1 accepts any ociVersion; ociruntime refuses a major version it does not know."""
    b = bundle("true")
    b.config["ociVersion"] = "2.0.0"
    cid = runtime.new_id()
    r = runtime.run("create", "--bundle", b, cid)
    assert r.rc == 1
    runtime.refused(r, "2.0.0")
    assert_nothing_left(runtime, cid)


@pytest.mark.ociruntime_only
def test_unknown_container_message(runtime):
    r = runtime.run("state", runtime.new_id("nope"))
    assert r.rc == 1
    assert runtime.refused(r).endswith("container does not exist")


def test_runc_accepts_any_oci_version(runtime, bundle):
    """Documents the difference ociruntime makes on purpose (see test_unsupported_oci_version_refused)."""
    if runtime.name != "runc":
        pytest.skip("runc behaviour")
    b = bundle("true")
    b.config["ociVersion"] = "2.0.0"
    assert runtime.run_container(b).rc == 0


def test_state_output_is_json_only(runtime, bundle):
    cid = runtime.create(bundle(*LONG_RUNNING))
    r = runtime.run("state", cid, check=True)
    assert r.err == ""
    assert json.loads(r.out)["id"] == cid


@pytest.mark.ociruntime_only
@pytest.mark.parametrize("soft,hard,words", [
    (2048, 1024, "current limit exceeds maximum limit"),         # EINVAL
    (1024, "raised", "not allowed to raise maximum limit"),      # EPERM: above the host's hard limit
])
def test_rlimit_refusals(runtime, bundle, soft, hard, words):
    """setrlimit's refusals, in the words of Python's resource module (rlimits.py keeps the errno
    values itself), and nothing left behind."""
    import resource
    host_hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard == "raised":
        if host_hard == resource.RLIM_INFINITY:
            pytest.skip("the host's RLIMIT_NOFILE has no hard limit to raise")
        soft, hard = host_hard, host_hard + 1
    b = bundle("true")
    b.config["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": soft, "hard": hard}]
    cid = runtime.new_id()
    r = runtime.run("create", "--bundle", b, cid)
    assert r.rc == 1
    runtime.refused(r, "setrlimit RLIMIT_NOFILE", words)
    assert_nothing_left(runtime, cid)


@pytest.mark.parametrize("terminal,socket,words", [
    (True, None, "cannot allocate tty if ociruntime will detach without setting console socket"),
    (False, "/nonexistent.sock", "cannot use console socket if ociruntime will not detach or allocate tty"),
])
def test_console_refusals_leave_nothing(runtime, bundle, terminal, socket, words):
    """Refused from the command line and the config alone, before anything is made."""
    b = bundle("true")
    b.config["process"]["terminal"] = terminal
    cid = runtime.new_id()
    r = runtime.run("create", "--bundle", b, *(("--console-socket", socket) if socket else ()), cid)
    assert r.rc == 1
    line = runtime.refused(r, words.replace("ociruntime", runtime.name))
    if runtime.name == "ociruntime":
        assert line == "ociruntime: " + words
    assert_nothing_left(runtime, cid)


@pytest.mark.ociruntime_only
def test_device_rule_access_refused(runtime, bundle):
    """An access string with letters other than r, w, m is refused before anything is made, the
    message naming the rule (runc 1.1.5 accepts it)."""
    b = bundle(*LONG_RUNNING)
    b.config["linux"]["resources"]["devices"] = [
        {"allow": False, "access": "rwm"},
        {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwx"}]
    cid = runtime.new_id()
    r = runtime.run("create", "--bundle", b, cid)
    assert r.rc == 1
    assert r.err == ('ociruntime: config.json: linux.resources.devices[1].access: "rwx" is not a combination '
                     'of r (read), w (write) and m (mknod)\n')
    assert_nothing_left(runtime, cid)
