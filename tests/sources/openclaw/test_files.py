"""Atomic writes (old file or new, never half), private modes whatever the umask, clean failure."""

from __future__ import annotations

import errno
import os
import stat

import pytest

from sidecar.errors import StoreError, StoreReadOnly
from sidecar.sources.openclaw import files


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_atomic_write_modes_ignore_umask(tmp_path, umask):
    """New folders are 0700 and the file 0600 whether the umask is 000, 022 or 077."""
    target = tmp_path / "a" / "b" / "auth-profiles.json"
    files.atomic_write(target, b'{"version": 1}\n')
    assert (target.read_bytes(), mode(target), mode(tmp_path / "a"), mode(tmp_path / "a/b")) == (
        b'{"version": 1}\n',
        0o600,
        0o700,
        0o700,
    )


def test_atomic_write_replaces_a_world_readable_file_with_a_private_one(tmp_path):
    """Overwriting a 0644 file leaves a 0600 file holding only the new bytes."""
    target = tmp_path / "auth-profiles.json"
    target.write_bytes(b"old contents, longer than the new ones")
    target.chmod(0o644)
    files.atomic_write(target, b"new")
    assert (target.read_bytes(), mode(target)) == (b"new", 0o600)


def test_ensure_dir_leaves_existing_folders_alone(tmp_path, umask):
    """Only folders it creates get 0700; an existing parent keeps its mode."""
    parent = tmp_path / "shared"
    parent.mkdir()
    parent.chmod(0o755)
    files.ensure_dir(parent / "x" / "y")
    assert (mode(parent), mode(parent / "x"), mode(parent / "x" / "y")) == (0o755, 0o700, 0o700)


def failing_replace(err: int):
    def replace(src, dst, *args, **kwargs):
        raise OSError(err, os.strerror(err), str(dst))

    return replace


@pytest.mark.parametrize(
    ("err", "kind"),
    [
        (errno.EIO, StoreError),
        (errno.ENOSPC, StoreError),
        (errno.EROFS, StoreReadOnly),
        (errno.EACCES, StoreReadOnly),
        (errno.EPERM, StoreReadOnly),
    ],
    ids=["EIO", "ENOSPC", "EROFS", "EACCES", "EPERM"],
)
@pytest.mark.parametrize("existed", [True, False], ids=["replacing", "creating"])
def test_failed_rename_leaves_old_file_and_no_temp(tmp_path, monkeypatch, err, kind, existed):
    """If the rename fails the target is untouched, the temp file is gone, the error names it."""
    target = tmp_path / "auth-profiles.json"
    if existed:
        target.write_bytes(b"old")
    monkeypatch.setattr(files.os, "replace", failing_replace(err))
    with pytest.raises(StoreError) as info:
        files.atomic_write(target, b"new")
    monkeypatch.undo()
    assert (
        type(info.value),
        str(target) in info.value.message,
        sorted(p.name for p in tmp_path.iterdir()),
        target.read_bytes() if existed else None,
    ) == (kind, True, ["auth-profiles.json"] if existed else [], b"old" if existed else None)


def test_failed_write_removes_the_temp_file(tmp_path, monkeypatch):
    """A failing fsync (disk trouble) removes the partly written temp file."""
    target = tmp_path / "auth-profiles.json"
    target.write_bytes(b"old")

    def fsync(fd):
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(files.os, "fsync", fsync)
    with pytest.raises(StoreError):
        files.atomic_write(target, b"new")
    monkeypatch.undo()
    assert ([p.name for p in tmp_path.iterdir()], target.read_bytes()) == (
        ["auth-profiles.json"],
        b"old",
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_folder_is_store_read_only(tmp_path):
    """Writing into a folder without write permission is StoreReadOnly."""
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(StoreReadOnly):
            files.atomic_write(tmp_path / "auth-profiles.json", b"x")
    finally:
        tmp_path.chmod(0o700)


@pytest.mark.parametrize("err", [errno.EROFS, errno.EACCES])
def test_read_only_file_system_is_store_read_only(tmp_path, monkeypatch, err):
    """A file system that refuses the temp file (read-only mount) is StoreReadOnly."""
    real_open = os.open

    def open_(path, flags, *args, **kwargs):
        if flags & os.O_CREAT:
            raise OSError(err, os.strerror(err), str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(files.os, "open", open_)
    with pytest.raises(StoreReadOnly):
        files.atomic_write(tmp_path / "auth-profiles.json", b"x")
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


def test_read_only_parent_when_creating_folders_is_store_read_only(tmp_path, monkeypatch):
    """A missing agent folder that cannot be created is StoreReadOnly too, not a raw OSError."""

    def mkdir(path, *args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))

    monkeypatch.setattr(files.os, "mkdir", mkdir)
    with pytest.raises(StoreReadOnly):
        files.atomic_write(tmp_path / "agents" / "w" / "auth-profiles.json", b"x")


def test_read_bytes_of_a_missing_file_is_none(tmp_path):
    """A file that does not exist reads as None, not as an error."""
    assert files.read_bytes(tmp_path / "nope") is None


def test_read_bytes_of_a_folder_is_store_error(tmp_path):
    """A path that cannot be read is a StoreError naming it."""
    with pytest.raises(StoreError) as info:
        files.read_bytes(tmp_path)
    assert str(tmp_path) in info.value.message


def test_remove_is_idempotent(tmp_path):
    """Removing a missing file is not an error."""
    target = tmp_path / "auth-state.json"
    target.write_bytes(b"{}")
    files.remove(target)
    files.remove(target)
    assert list(tmp_path.iterdir()) == []
