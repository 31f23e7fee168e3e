"""One writer per store, and ``--overwrite`` that only ever replaces a store of this package.

A writing process (a :class:`~microcircuit.recording.ZarrRecorder` from create or reopen to close,
the client of a sweep for the sweep's whole run) holds an exclusive ``flock`` on the store's root
directory. The kernel drops the lock when the process dies, however it dies, so a SIGKILLed run
leaves no stale lock. The lock is on the directory itself, not on a file inside it: zarr warns about
every file in a group that is not part of the hierarchy, and a lock file left by a killed run would
make every later read of the store warn. Who holds the lock (pid, host, since when) is written to
the root attr ``writer`` by the holder, for the error message another writer gets; it is set back to
``None`` when the writer closes the store.

Creating a store is race-free: ``os.mkdir`` is atomic, so of many processes creating the same path
exactly one creates the directory; it then locks it. A process that did not create the directory
never deletes it: without ``overwrite`` it stops with an error, with ``overwrite`` it first locks
the existing store and only then deletes its contents (keeping the directory, whose lock it holds).
What may be replaced (:func:`check_replaceable`): an empty directory, or a Zarr store whose root attr
``microcircuit_format`` is one of :data:`STORE_FORMATS`; never a symlink, a file, a foreign folder
or someone else's Zarr store.

``flock`` is advisory and local: it protects against other microcircuit processes on the same
machine (and on NFS mounts where the kernel emulates it), not against ``rm -rf``.
"""
from __future__ import annotations

import datetime as _datetime
import fcntl
import json
import os
import shutil
import socket
import time
from pathlib import Path
from typing import Any

from .recording import RecordingError, RecordingExistsError

__all__ = ["StoreBusyError", "StoreLock", "claim_new_store", "check_replaceable", "store_format",
           "discard_new_store", "STORE_FORMATS", "WRITER_ATTR"]

STORE_FORMATS = ("recording", "sweep")   # root attr microcircuit_format of the stores this package writes
WRITER_ATTR = "writer"                   # root attr naming the process that holds the lock
CREATOR_WAIT_S = 5.0                     # a creator waits this long for processes that only peeked
WRITER_WAIT_S = 1.0                      # a refused process waits this long to learn the holder's pid


class StoreBusyError(RecordingError):
    """Another process is writing the store (it holds the store's lock)."""


def _busy(path: Path) -> StoreBusyError:
    return StoreBusyError(f"{path}: is being written by {_writer_text(path)}; wait for it or choose another --out")


def _writer_text(path: Path, wait: float = WRITER_WAIT_S) -> str:
    """"pid N on HOST since T" from the root attr ``writer``. A writer that has just taken the lock
    writes it a moment later (with the store's root metadata; until then the attr is empty or names
    a dead writer killed earlier), so this waits up to ``wait`` seconds for it before settling for
    "another process"."""
    deadline = time.monotonic() + wait
    while True:
        try:
            w = json.loads((path / "zarr.json").read_text()).get("attributes", {}).get(WRITER_ATTR) or {}
            pid, host = int(w["pid"]), w["host"]
            if host == socket.gethostname() and not _alive(pid):
                raise KeyError("writer")
            return f"pid {pid} on {host} since {w['since']}"
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            if time.monotonic() >= deadline:
                return "another process"
            time.sleep(0.02)


def _alive(pid: int) -> bool:
    if pid <= 0:              # never signal a process group (os.kill(0 or -N, 0))
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # exists, owned by another user
        return True
    return True


class StoreLock:
    """An exclusive ``flock`` on a store directory, held from :meth:`acquire` to :meth:`release`.

    ``created`` says whether this process created the directory in this claim (only then may it
    remove the directory again, see :func:`discard_new_store`). ``writer`` is the root attr value
    the holder writes into the store.
    """

    def __init__(self, path: Path, fd: int, created: bool) -> None:
        self.path, self._fd, self.created = path, fd, created
        self.writer = {"pid": os.getpid(), "host": socket.gethostname(),
                       "since": _datetime.datetime.now(_datetime.timezone.utc).isoformat(timespec="seconds")}

    @classmethod
    def acquire(cls, path: str | os.PathLike, *, wait: float = 0.0, created: bool = False) -> StoreLock:
        """Lock the existing directory ``path``, retrying for ``wait`` seconds; StoreBusyError if held."""
        p = Path(path)
        try:
            fd = os.open(p, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError as exc:
            raise RecordingError(f"{p}: no such store directory; check the path") from exc
        except NotADirectoryError as exc:
            raise RecordingError(f"{p}: is a file, not a store directory; choose another path") from exc
        if not _flock(fd, fcntl.LOCK_EX, wait):
            os.close(fd)
            raise _busy(p)
        return cls(p, fd, created)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Drop the lock (closing the descriptor releases it). A second release is a no-op."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def __enter__(self) -> StoreLock:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()

    def __del__(self) -> None:  # an abandoned writer must not keep its store locked
        try:
            self.release()
        except Exception:       # at interpreter exit os may be gone; the kernel drops the lock anyway
            pass


def _flock(fd: int, kind: int, wait: float) -> bool:
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, kind | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)


def _is_locked(path: Path) -> bool:
    """Whether some process holds the store's lock (peeks with a momentary shared lock)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        return not _flock(fd, fcntl.LOCK_SH, 0.0)
    finally:
        os.close(fd)    # also drops the shared lock if we got it


def store_format(path: str | os.PathLike) -> str | None:
    """The root attr ``microcircuit_format`` of the Zarr v3 store at ``path``, or None if there is none."""
    try:
        meta = json.loads((Path(path) / "zarr.json").read_text())
    except (OSError, ValueError):
        return None
    fmt = meta.get("attributes", {}).get("microcircuit_format") if isinstance(meta, dict) else None
    return fmt if isinstance(fmt, str) else None


def check_replaceable(path: str | os.PathLike) -> None:
    """Raise RecordingError unless ``path`` is an empty directory or a store this package wrote.

    This is the only test ``--overwrite`` applies before deleting anything (recordings and sweeps).
    """
    p = Path(path)
    if p.is_symlink():
        raise RecordingError(f"{p}: is a symbolic link; refusing to delete it even with --overwrite; "
                             "pass the store directory itself or choose another path")
    if not p.is_dir():
        raise RecordingError(f"{p}: exists and is not a directory; refusing to delete it even with --overwrite; "
                             "remove it yourself or choose another path")
    if store_format(p) in STORE_FORMATS or not any(p.iterdir()):
        return
    raise RecordingError(
        f"{p}: exists and is not a Zarr store written by microcircuit (no root attr microcircuit_format "
        f"in {', '.join(STORE_FORMATS)}) or an empty directory; refusing to delete it even with --overwrite; "
        "remove it yourself or choose another path")


def _clear(p: Path) -> None:
    """Delete everything inside the locked directory ``p`` (the directory itself stays, locked).

    The root ``zarr.json`` goes last: a process killed half-way leaves a directory that still
    carries the marker, so a later ``--overwrite`` may replace it instead of refusing it as foreign."""
    for entry in sorted(p.iterdir(), key=lambda e: e.name == "zarr.json"):
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def claim_new_store(path: str | os.PathLike, *, overwrite: bool) -> StoreLock:
    """Create (or, with ``overwrite``, empty) the store directory ``path`` and return its held lock.

    Of several processes claiming one new path at once exactly one succeeds; the others get
    StoreBusyError (the winner holds the lock) or RecordingExistsError (the store is there and not
    being written), and delete nothing.
    """
    p = Path(path)
    try:
        os.mkdir(p)
    except FileExistsError:
        if not overwrite:
            raise _busy(p) if _is_locked(p) else RecordingExistsError(
                f"{p}: already exists; pass --overwrite (overwrite=True) to replace it, or choose another path"
            ) from None
        return _claim_existing(p)
    except FileNotFoundError:
        raise RecordingError(f"{p}: parent directory {p.parent} does not exist; create it first") from None
    try:
        lock = StoreLock.acquire(p, wait=CREATOR_WAIT_S, created=True)
    except StoreBusyError:
        raise _busy(p) from None  # an --overwrite of another process took the new directory over: it is theirs
    if any(p.iterdir()):          # another process wrote a store here between our mkdir and our lock
        lock.release()
        raise RecordingExistsError(f"{p}: was just created by another process; choose another path")
    return lock


def _claim_existing(p: Path) -> StoreLock:
    """Lock the existing directory ``p`` for an overwrite, check once more that it may be replaced,
    and empty it. Nothing is deleted unless the lock is held."""
    try:                          # before locking: a foreign folder is not even opened for a lock
        check_replaceable(p)
    except RecordingError:
        if _is_locked(p):         # a store half emptied by another overwrite in progress
            raise _busy(p) from None
        raise
    lock = StoreLock.acquire(p)
    try:
        check_replaceable(p)      # again under the lock: nobody can change it now
        _clear(p)
    except BaseException:
        lock.release()
        raise
    return lock


def discard_new_store(lock: StoreLock | None) -> None:
    """Undo a claim whose store could not be set up: remove what this process wrote, nothing else.

    Only a held lock permits deleting: a directory this claim created is removed, an existing store
    emptied by an overwrite claim is emptied again (its old contents were deleted by the claim).
    """
    if lock is None or not lock.held:
        return
    try:
        if lock.created:
            shutil.rmtree(lock.path, ignore_errors=True)
        else:
            _clear(lock.path)
    except OSError:
        pass  # best effort: the error that made us discard is the one to report
    finally:
        lock.release()
