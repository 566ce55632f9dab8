"""Durable append-only files: a record is wholly on disk after ``append`` returns, or not at all.

Shared by the write-ahead log (``node/wal.py``) and the evidence log
(``node/evidence.py``). Three rules, each learnt from a way a log loses data:

* a new file's directory entry is fsynced too (:func:`create_durable`), because fsyncing
  a file does not make its name survive a power cut;
* an append that fails half way (ENOSPC, EIO, a failed fsync) is cut back to the last
  good length before the error is raised (:class:`DurableAppender`), so the torn bytes
  never sit in front of later records;
* if even that cut fails the appender refuses every later append: what is on disk after
  the good length is then unknown, and writing after it would bury later records
  behind garbage.

Failures are :class:`~ledger.errors.StoreWriteError`, translated here from ``OSError``.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from ledger.errors import StoreWriteError


def fsync_dir(path: Path) -> None:
    """Make the entries of directory ``path`` (a created, renamed or removed name) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dirs_durable(path: Path) -> None:
    """``mkdir -p path``, fsyncing the parent of every directory it creates."""
    missing: list[Path] = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    path.mkdir(parents=True, exist_ok=True)
    # Deepest last: a directory's name lives in its parent.
    for created in reversed(missing):
        fsync_dir(created.parent)


def write_all(fd: int, data: bytes) -> None:
    """Write every byte of ``data`` (``os.write`` may write fewer than asked)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def replace_durable(path: Path, content: bytes) -> None:
    """Atomically make ``path`` hold exactly ``content``: temp file, fsync, rename, fsync directory.

    Raises StoreWriteError; ``path`` then holds either its old content or ``content``.
    """
    tmp = path.with_name(path.name + ".tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            write_all(fd, content)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise StoreWriteError(f"{path}: expected it replaced durably, got {type(exc).__name__}: {exc.strerror or exc}") from exc


def create_durable(path: Path, content: bytes) -> None:
    """Create ``path`` holding ``content`` (and any missing directories), all of it durable."""
    make_dirs_durable(path.parent)
    replace_durable(path, content)


class DurableAppender:
    """Appends to one file; each append is fsynced, or cut back and reported."""

    def __init__(self, path: Path, good_size: int) -> None:
        self.path = path
        self.size = good_size
        """Length of the file up to the end of the last durable append."""
        self.broken: str | None = None
        """Why appends are refused, once a failed append could not be cut back."""
        self._fd: int | None = os.open(path, os.O_WRONLY | os.O_APPEND)

    def is_current(self) -> bool:
        """Whether ``path`` still names the file this appender writes (not replaced since)."""
        try:
            return os.fstat(self.fd).st_ino == os.stat(self.path).st_ino
        except OSError:
            return False

    @property
    def fd(self) -> int:
        if self._fd is None:
            raise StoreWriteError(f"{self.path}: expected an open file, got one already closed")
        return self._fd

    def append(self, data: bytes, what: str) -> None:
        """Make ``data`` durable at the end of the file, or raise with nothing appended."""
        if self.broken is not None:
            raise StoreWriteError(f"{self.path}: refusing to append {what}: {self.broken}")
        fd = self.fd
        try:
            write_all(fd, data)
            os.fsync(fd)
        except OSError as exc:
            self._cut_back(exc)
            raise StoreWriteError(
                f"{self.path}: expected {what} on disk, got {type(exc).__name__}: {exc.strerror or exc}; "
                "nothing was appended"
            ) from exc
        self.size += len(data)

    def _cut_back(self, cause: OSError) -> None:
        fd = self.fd
        try:
            os.ftruncate(fd, self.size)
            os.fsync(fd)
        except OSError as exc:
            self.broken = (
                f"an append failed ({cause.strerror or cause}) and cutting it back to {self.size} bytes failed "
                f"too ({exc.strerror or exc}); reopen the file to recover"
            )

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)
