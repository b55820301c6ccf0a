"""cgroups.Manager.create on a temporary directory laid out as two v1 hierarchies: what it records
as made (only what it made), the error of a failed mkdir, and destroy taking back exactly that;
its plan (what made.json records first), the cpuset fill and the frozen-cgroup refusal."""
import functools
import os

import pytest

from ociruntime.cgroups import Manager
from ociruntime.errors import CgroupError


def _manager(tmp_path, path="/oci-test-grp/ctr"):
    for h in ("h1", "h2"):
        (tmp_path / h).mkdir()
    return Manager({h: (str(tmp_path / h), path, 1, "") for h in ("h1", "h2")})


def test_records_what_it_made(tmp_path):
    cg = _manager(tmp_path)
    (tmp_path / "h2" / "oci-test-grp").mkdir()  # a parent there already: not ours
    cg.create()
    assert cg.created == [str(tmp_path / "h1" / "oci-test-grp"), str(tmp_path / "h1" / "oci-test-grp" / "ctr"),
                          str(tmp_path / "h2" / "oci-test-grp" / "ctr")]
    cg.destroy()
    assert os.listdir(tmp_path / "h1") == [] and os.listdir(tmp_path / "h2") == ["oci-test-grp"]


def test_failure_and_destroy(tmp_path):
    cg = _manager(tmp_path)
    (tmp_path / "h2" / "oci-test-grp").write_text("")  # a file in the way
    with pytest.raises(CgroupError) as e:
        cg.create()
    assert str(e.value) == "create cgroup %s: Not a directory" % (tmp_path / "h2" / "oci-test-grp" / "ctr")
    assert len(cg.created) == 2  # h1's two
    cg.destroy()
    assert os.listdir(tmp_path / "h1") == []


def test_plan_is_what_is_missing(tmp_path):
    """plan() (recorded in made.json before anything is made) lists exactly what create() makes."""
    cg = _manager(tmp_path)
    (tmp_path / "h2" / "oci-test-grp").mkdir()
    planned = cg.plan()
    assert planned == [str(tmp_path / "h1" / "oci-test-grp"), str(tmp_path / "h1" / "oci-test-grp" / "ctr"),
                       str(tmp_path / "h2" / "oci-test-grp" / "ctr")]
    assert cg.create(planned) is True
    assert cg.created == planned


def test_made_meanwhile_is_not_ours(tmp_path):
    """A directory of the plan that another tool made before create() got to it is not recorded."""
    cg = _manager(tmp_path)
    planned = cg.plan()
    (tmp_path / "h1" / "oci-test-grp").mkdir()
    assert cg.create(planned) is False
    assert str(tmp_path / "h1" / "oci-test-grp") not in cg.created
    cg.destroy()
    assert os.listdir(tmp_path / "h1") == ["oci-test-grp"] and os.listdir(tmp_path / "h2") == []


def _v1_cpuset(tmp_path, values):
    """A fake v1 cpuset hierarchy: {relative dir: (cpus, mems)}, the root's included ("")."""
    for rel, (cpus, mems) in values.items():
        d = tmp_path / "cpuset" / rel
        d.mkdir(parents=True, exist_ok=True)
        (d / "cpuset.cpus").write_text(cpus + "\n")
        (d / "cpuset.mems").write_text(mems + "\n")
    return str(tmp_path / "cpuset")


def _read(tmp_path, rel):
    return tuple((tmp_path / "cpuset" / rel / f).read_text().strip() for f in ("cpuset.cpus", "cpuset.mems"))


@pytest.mark.parametrize("made", [True, False])
def test_empty_cpuset_ancestors_are_filled_from_the_nearest_populated(tmp_path, made):
    from ociruntime.cgroups import fill_cpuset
    mp = _v1_cpuset(tmp_path, {"": ("0-3", "0"), "a": ("1-2", "0"), "a/b": ("", ""), "a/b/c": ("", "")})
    leaf = os.path.join(mp, "a/b/c")
    fill_cpuset(mp, leaf, made)
    read = functools.partial(_read, tmp_path)
    assert read("a/b") == ("1-2", "0") and read("a/b/c") == ("1-2", "0")
    assert read("a") == ("1-2", "0") and read("") == ("0-3", "0")


def test_a_populated_cpuset_is_never_changed(tmp_path):
    from ociruntime.cgroups import fill_cpuset
    mp = _v1_cpuset(tmp_path, {"": ("0-3", "0"), "a": ("", "0"), "a/c": ("3", "")})
    fill_cpuset(mp, os.path.join(mp, "a/c"), made=False)
    read = functools.partial(_read, tmp_path)
    assert read("a/c") == ("3", "0")  # cpus kept; mems from a
    assert read("a") == ("", "0")  # (a's cpus were not needed: c has its own)


@pytest.mark.parametrize("layout,files,frozen", [
    ("v2", {"cgroup.events": "populated 0\nfrozen 1\n"}, True),       # frozen itself or by a parent
    ("v2", {"cgroup.events": "populated 0\nfrozen 0\n"}, False),
    ("v2", {"cgroup.events": "populated 1\nfrozen 0\n", "cgroup.freeze": "1\n"}, True),  # freezing
    ("v2", {"cgroup.events": "populated 1\nfrozen 0\n", "cgroup.freeze": "0\n"}, False),
    ("v1", {"freezer.state": "FROZEN\n"}, True),
    ("v1", {"freezer.state": "FREEZING\n"}, True),
    ("v1", {"freezer.state": "THAWED\n"}, False),
])
def test_check_thawed(tmp_path, layout, files, frozen):
    """A pure v2 layout (as on a systemd host: one unified hierarchy) and a v1 freezer: a frozen
    container cgroup is refused with runc's words before any process joins it."""
    d = tmp_path / "h" / "ctr"
    d.mkdir(parents=True)
    for name, text in files.items():
        (d / name).write_text(text)
    paths = {"unified": (str(tmp_path / "h"), "/ctr", 2, "")} if layout == "v2" else \
        {"freezer": (str(tmp_path / "h"), "/ctr", 1, "freezer")}
    cg = Manager(paths)
    if frozen:
        with pytest.raises(CgroupError, match="container's cgroup unexpectedly frozen: " + str(d)):
            cg.check_thawed()
    else:
        cg.check_thawed()
