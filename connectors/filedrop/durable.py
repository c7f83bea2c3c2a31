"""Durable file primitives of the drop folder: whole writes at a known offset, fsync of files
and folders, the folder lock, and the token check that keeps notification ids safe in file
names and CSV cells.

Every write lands at an offset the caller knows to be the end of the good data, so a write that
failed half way is overwritten (after a truncate) rather than followed by a torn record.
"""

from __future__ import annotations

import fcntl
import os
import re
from pathlib import Path

LOCK_NAME = ".filedrop.lock"
# Hub notification ids are UUIDs; anything else that could become a file name or a CSV cell
# starting with a formula character is refused before it touches the disk.
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


def safe_id(notification_id: str) -> bool:
    return _SAFE_ID.fullmatch(notification_id) is not None


def write_at(fd: int, data: bytes, offset: int) -> None:
    """Write all of ``data`` at ``offset`` (pwrite may write less than asked)."""
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written


def sync_file(fd: int) -> None:
    # fdatasync also flushes the size, which is all a reader needs; fall back where missing.
    sync = getattr(os, "fdatasync", os.fsync)
    sync(fd)


def sync_dir(path: Path) -> None:
    """Make creations, renames and unlinks in ``path`` durable, not just the files' bytes."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_bytes(path: Path) -> bytes:
    with open(path, "rb") as file:
        return file.read()


def truncate(path: Path, size: int) -> None:
    """Cut ``path`` to ``size`` bytes, durably."""
    fd = os.open(path, os.O_WRONLY)
    try:
        os.ftruncate(fd, size)
        sync_file(fd)
    finally:
        os.close(fd)


def lock_folder(directory: Path) -> int | None:
    """Take ``directory``'s exclusive lock (``.filedrop.lock``) and return its descriptor, or
    None when another sink holds it. The kernel drops it when the process dies, even by kill -9.
    """
    fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd
