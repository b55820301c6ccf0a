"""cgroups.Manager.create on a temporary directory laid out as two v1 hierarchies: what it records
as made (only what it made), the error of a failed mkdir, and destroy taking back exactly that."""
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
