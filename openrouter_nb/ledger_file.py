"""Opening the ledger's SQLite file: any number of kernels at once, a home folder that is a
file or read-only, a ledger file that cannot be written (still read), and a damaged file
(moved aside, never deleted). :class:`openrouter_nb.ledger.Ledger` uses these; each problem
is a :class:`HomeFolderError` naming the path, what is wrong and what to do.
"""

from __future__ import annotations

import os
import random
import sqlite3
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TypeVar

from .api.errors import HomeFolderError

_T = TypeVar("_T")

#: How long a kernel waits, in all, for others that hold the file's locks.
OPEN_TIMEOUT_S = 30.0
_ELSEWHERE = "set OPENROUTER_NB_HOME (or Session(home=...)) to a folder you can write to"


def connect(target: str, *, uri: bool = False) -> sqlite3.Connection:
    """A connection as the ledger uses it: autocommit, any thread, waiting on busy locks."""
    conn = sqlite3.connect(target, uri=uri, timeout=OPEN_TIMEOUT_S, check_same_thread=False,
                           isolation_level=None)
    conn.execute(f"PRAGMA busy_timeout = {int(OPEN_TIMEOUT_S * 1000)}")
    return conn


# SQLite's primary result codes (the sqlite3 module names them only from Python 3.11 on, like
# the exception's sqlite_errorcode that they are compared with).
_PERM, _BUSY, _LOCKED, _READONLY, _CORRUPT, _CANTOPEN, _NOTADB = 3, 5, 6, 8, 11, 14, 26


def _code(exc: sqlite3.Error) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)
    return None if code is None else code & 0xFF


def _matches(exc: sqlite3.Error, codes: tuple[int, ...], *words: str) -> bool:
    """By the primary result code where Python exposes it, else by the message's words."""
    code = _code(exc)
    if code is not None:
        return code in codes
    text = str(exc).lower()
    return any(word in text for word in words)


def is_busy(exc: sqlite3.Error) -> bool:
    """Another connection holds a lock (``SQLITE_BUSY``/``SQLITE_LOCKED``, any variant)."""
    return _matches(exc, (_BUSY, _LOCKED), "locked", "busy")


def is_damaged(exc: sqlite3.Error) -> bool:
    """The file is not an SQLite database, or a damaged one."""
    return _matches(exc, (_NOTADB, _CORRUPT), "not a database", "malformed")


def is_unwritable(exc: sqlite3.Error) -> bool:
    """The file or its folder cannot be written (or the file created)."""
    return _matches(exc, (_READONLY, _CANTOPEN, _PERM), "readonly", "unable to open")


def retry_while_busy(step: Callable[[], _T], timeout_s: float | None = None) -> _T:
    """``step()``, run again with a growing, jittered pause while another kernel holds a lock.

    SQLite does not apply the busy timeout to every lock: switching a new file to WAL mode
    and reading it while another connection does so fail at once with ``database is
    locked``. Gives up after ``timeout_s`` (default ``OPEN_TIMEOUT_S``) in all.
    """
    deadline = time.monotonic() + (OPEN_TIMEOUT_S if timeout_s is None else timeout_s)
    pause = 0.002
    while True:
        try:
            return step()
        except sqlite3.OperationalError as exc:
            if not is_busy(exc) or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause * random.uniform(0.5, 1.5))
        pause = min(pause * 2, 0.25)


def prepare_folder(path: Path) -> None:
    """Create the folder of the ledger file ``path``; a file in the way or a folder that
    cannot be created is a :class:`HomeFolderError`."""
    folder = path.parent
    if path.is_dir():
        raise HomeFolderError(f"The ledger {path} is a folder, not a file. Move that folder "
                              f"away, or {_ELSEWHERE}.", path=path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        blocker = next((p for p in (folder, *folder.parents) if p.is_file()), None)
        if blocker == folder:
            raise HomeFolderError(f"The ledger folder {folder} is a file, not a folder. Move "
                                  f"that file away, or {_ELSEWHERE}.", path=folder) from None
        if blocker is not None:
            raise HomeFolderError(f"The ledger folder {folder} cannot be created: {blocker} is "
                                  f"a file, not a folder. Move that file away, or "
                                  f"{_ELSEWHERE}.", path=folder) from None
        reason = "permission denied" if isinstance(exc, PermissionError) else exc.strerror
        raise HomeFolderError(f"The ledger folder {folder} cannot be created ({reason}). "
                              f"{_ELSEWHERE[0].upper()}{_ELSEWHERE[1:]}.", path=folder) from None


def cannot_create(path: Path) -> HomeFolderError:
    """The error for a new ledger in a folder that cannot be written."""
    return HomeFolderError(f"The ledger {path} cannot be created: its folder {path.parent} is "
                           f"read-only. Make the folder writable, or {_ELSEWHERE}.", path=path)


def read_only_error(path: Path) -> HomeFolderError:
    """The error for a row written to a ledger opened read-only."""
    return HomeFolderError(f"The ledger {path} is read-only (the file or its folder cannot be "
                           "written): its rows can be read, but no new attempt can be recorded. "
                           f"Make it writable, or {_ELSEWHERE}.", path=path)


def file_writable(path: Path) -> bool:
    """Whether this process may write the existing file ``path`` (opened, never written)."""
    try:
        with open(path, "r+b"):
            return True
    except PermissionError:
        return False
    except OSError:
        return True  # some other trouble: SQLite will name it


_HEADER = b"SQLite format 3\x00"


def not_a_database(path: Path) -> str | None:
    """Why the existing file ``path`` is plainly no SQLite database (checked before SQLite
    opens it, which could touch its ``-wal``), or None. The header is read twice, a moment
    apart, so a new ledger another kernel is writing just now is never taken for damage."""
    seen = [_start(path)]
    if seen[0] and seen[0] != _HEADER:
        time.sleep(0.05)
        seen.append(_start(path))
    return None if not seen[-1] or seen[-1] == _HEADER else "file is not a database"


def _start(path: Path) -> bytes:
    """The first bytes of ``path`` (none if it cannot be read: SQLite will say why)."""
    try:
        with open(path, "rb") as handle:
            return handle.read(len(_HEADER))
    except OSError:
        return b""


def file_identity(path: Path) -> tuple[int, int] | None:
    """Device and inode of ``path`` (None if absent): tells a file from its replacement."""
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found.st_dev, found.st_ino


def connect_read_only(path: Path) -> sqlite3.Connection:
    """A read-only connection to an existing ledger.

    ``mode=ro`` sees rows other kernels add; when the folder cannot even hold the ``-shm``
    file that needs, ``immutable=1`` reads the file as it is (a snapshot).
    """
    uri = path.resolve().as_uri()
    failure: sqlite3.Error | None = None
    for option in ("mode=ro", "immutable=1"):
        conn = connect(f"{uri}?{option}", uri=True)
        try:
            retry_while_busy(partial(conn.execute, "SELECT COUNT(*) FROM sqlite_master"))
            return conn
        except sqlite3.DatabaseError as exc:
            conn.close()
            if is_damaged(exc):
                raise HomeFolderError(
                    f"The ledger {path} is damaged ({exc}) and read-only, so it cannot be moved "
                    f"aside. Move it away yourself (it is never deleted), or {_ELSEWHERE}.",
                    path=path) from None
            failure = exc
    raise HomeFolderError(f"The ledger {path} cannot be read ({failure}). Check the "
                          f"permissions of the file and its folder, or {_ELSEWHERE}.",
                          path=path) from None


def read_as_current(conn: sqlite3.Connection, columns: Sequence[str]) -> None:
    """Make an older schema, opened read-only (so never migrated), read like the current one:
    TEMP tables and views, which shadow the file's, add what is missing (as NULL)."""
    have = [row[1] for row in conn.execute("PRAGMA main.table_info(attempts)")]
    if not have:
        conn.execute("CREATE TEMP TABLE attempts (id INTEGER PRIMARY KEY, "
                     f"{', '.join(columns)})")
    elif missing := [name for name in columns if name not in have]:
        conn.execute("CREATE TEMP VIEW attempts AS SELECT *, "
                     f"{', '.join(f'NULL AS {name}' for name in missing)} FROM main.attempts")
    if not conn.execute("SELECT 1 FROM main.sqlite_master WHERE name = 'column_chunks'"
                        ).fetchone():
        conn.execute("CREATE TEMP TABLE column_chunks (file TEXT PRIMARY KEY, after_id "
                     "INTEGER, last_id INTEGER, rows INTEGER)")


_COMPANIONS = ("-wal", "-shm")  # SQLite's files beside the database; they go with it


def move_aside(path: Path, columns_dir: Path, reason: object,
               identity: tuple[int, int] | None) -> Path | None:
    """Rename the damaged ledger ``path`` (with its ``-wal``, ``-shm`` and columnar copy) to
    ``<name>.corrupt-<UTC time>``, deleting and overwriting nothing, and warn.

    ``identity`` is the file's :func:`file_identity` when it was found damaged. Kernels move
    one at a time (a lock file beside it); if the file is another one by now, a kernel moved
    it first: nothing is done and None returned.
    """
    def refuse(what: str, exc: OSError) -> HomeFolderError:
        return HomeFolderError(
            f"The ledger {path} is damaged ({reason}) and {what} cannot be moved aside "
            f"({exc.strerror}). Move the ledger's files away yourself (they are never "
            f"deleted), or {_ELSEWHERE}.", path=path)

    lock = Path(f"{path}.corrupt.lock")
    try:
        with _exclusive(lock):
            if identity is None or file_identity(path) != identity:
                return None
            target = _aside_name(path)
            moves = [(Path(f"{path}{end}"), Path(f"{target}{end}")) for end in _COMPANIONS]
            for source, destination in [(path, target), *moves,
                                        (columns_dir, Path(f"{target}-columns"))]:
                try:
                    if source == path or source.exists():
                        _rename(source, destination)
                except OSError as exc:
                    raise refuse(source.name, exc) from None
    except OSError as exc:  # the lock file cannot be made: neither can the move
        raise refuse(path.name, exc) from None
    warnings.warn(f"The ledger {path} is damaged ({reason}): it was moved to {target.name} "
                  "beside it (kept, not deleted) and a new, empty ledger started. Look into "
                  "the old file with any SQLite tool, or delete it yourself.",
                  RuntimeWarning, stacklevel=4)
    return target


def _aside_name(path: Path) -> Path:
    """``<name>.corrupt-<UTC time>``, with ``-2``, ``-3``… if that is taken."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target, number = path.with_name(f"{path.name}.corrupt-{stamp}"), 1
    while any(Path(f"{target}{end}").exists() for end in ("", *_COMPANIONS, "-columns")):
        number += 1
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{number}")
    return target


@contextmanager
def _exclusive(lock: Path) -> Iterator[None]:
    """Hold an exclusive lock on the file ``lock`` (made if absent, left behind) across
    processes: ``flock`` on POSIX, ``msvcrt.locking`` on Windows."""
    with open(lock, "a+b") as handle:
        if sys.platform == "win32":
            import msvcrt

            deadline = time.monotonic() + OPEN_TIMEOUT_S
            while True:
                try:
                    handle.seek(0)
                    msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            try:
                yield
            finally:
                handle.seek(0)
                msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
        else:
            import fcntl

            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _rename(source: Path, destination: Path) -> None:
    """``os.rename``, tried again for a second while the file is open elsewhere (Windows)."""
    for _ in range(20):
        try:
            os.rename(source, destination)
            return
        except PermissionError:
            if os.name != "nt":
                raise
            time.sleep(0.05)
    os.rename(source, destination)
