"""rootfs/paths.py's lookups inside a root, on a temporary directory: a dangling symlink is
followed inside the root, a file in the way and a symlink loop are the errors they are, and
is_dir_path's answers for what does not exist."""
import errno
import os

import pytest

from ociruntime.rootfs import paths


@pytest.fixture
def root(tmp_path):
    fd = os.open(tmp_path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    yield tmp_path, fd
    os.close(fd)


def test_mkdir_all_follows_dangling_symlink_inside_root(root):
    top, fd = root
    (top / "link").symlink_to("/made/here")  # absolute: clamped to the root
    out = paths.mkdir_all(fd, "/link/sub")
    try:
        assert os.path.realpath("/proc/self/fd/%d" % out) == str(top / "made" / "here" / "sub")
    finally:
        os.close(out)
    assert (top / "made" / "here" / "sub").is_dir()


def test_mkdir_all_file_in_the_way(root):
    top, fd = root
    (top / "a").write_text("")
    with pytest.raises(NotADirectoryError) as e:
        paths.mkdir_all(fd, "/a/b")
    assert e.value.filename == "a/b"


def test_mkdir_all_symlink_loop(root):
    """Dangling symlinks that lead to each other: the walk gives up as the kernel would (ELOOP)."""
    top, fd = root
    (top / "x").symlink_to("y/sub")
    (top / "y").symlink_to("x/sub")
    with pytest.raises(OSError) as e:
        paths.mkdir_all(fd, "/x")
    assert e.value.errno == errno.ELOOP


def test_is_dir_path(tmp_path):
    (tmp_path / "f").write_text("")
    assert paths.is_dir_path(str(tmp_path))
    assert not paths.is_dir_path(str(tmp_path / "f"))
    assert paths.is_dir_path(str(tmp_path / "missing"))          # ENOENT: taken as a directory
    assert paths.is_dir_path(str(tmp_path / "f" / "below"))      # ENOTDIR: likewise
