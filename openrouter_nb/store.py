"""Which ledger a session writes to: the SQLite file in the home folder (the default), or a
class's PostgreSQL database named by ``OPENROUTER_NB_LEDGER`` (or ``Session(ledger_url=...)``).

:class:`AttemptStore` is what both offer the layers above; one store per file or per
database and person is shared by every session of a process.
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .ledger import Ledger
from .pg_db import is_database_url, safe_url

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from .ledger_pg import PostgresLedger

__all__ = ["AttemptStore", "class_ledger", "file_ledger", "ledger_target"]


class AttemptStore(Protocol):
    """An append-only attempt log (:class:`~openrouter_nb.ledger.Ledger` or
    :class:`~openrouter_nb.ledger_pg.PostgresLedger`)."""

    read_only: bool
    where: str

    def record(self, **fields: Any) -> int: ...
    def record_many(self, rows: Iterable[Mapping[str, Any]]) -> int: ...
    def rows(self, *, call_id: str | None = None, batch_id: str | None = None,
             session_id: str | None = None, limit: int | None = None,
             newest_first: bool = False) -> list[dict[str, Any]]: ...
    def __len__(self) -> int: ...
    def attempt_times(self, *, since: float, account: str | None,
                      free_only: bool = True) -> list[float]: ...
    def count_attempts(self, *, since: float, account: str | None,
                       free_only: bool = True) -> int: ...
    def batch_answers(self, batch_id: str) -> dict[str, dict[str, Any]]: ...
    def cached_answer(self, request_hash: str) -> dict[str, Any] | None: ...
    def conversation_turns(self, name: str) -> tuple[str, str, list[str]] | None: ...
    def dataframe(self, *, limit: int | None = None, newest_first: bool = False,
                  columns: Sequence[str] | str | None = None) -> pd.DataFrame: ...


_files: dict[Path, Ledger] = {}
_classes: dict[tuple[str, str | None, bool, str], PostgresLedger] = {}
_lock = threading.Lock()


def file_ledger(path: Path) -> Ledger:
    """One SQLite ``Ledger`` per file per process."""
    path = path.expanduser().resolve()
    with _lock:
        if path not in _files:
            _files[path] = Ledger(path)
        return _files[path]


def ledger_target(configured: str | None, env: Mapping[str, str]) -> str | None:
    """The class database URL (``ledger_url`` or ``OPENROUTER_NB_LEDGER``), or None."""
    value = configured or env.get("OPENROUTER_NB_LEDGER") or None
    if value is None or not value.strip():
        return None
    value = value.strip()
    if not is_database_url(value):
        raise ValueError(f"OPENROUTER_NB_LEDGER must be a postgresql:// URL (a class's shared "
                         f"ledger), not {safe_url(value)[:60]!r}. For a ledger of your own, "
                         "leave it unset: the SQLite file in OPENROUTER_NB_HOME is used.")
    return value


def class_ledger(url: str, *, home: Path, person: str | None, everyone: bool,
                 wait_s: float) -> PostgresLedger:
    """One ``PostgresLedger`` per database, person and home per process."""
    from .ledger_pg import PostgresLedger

    key = (url, person, everyone, str(home.expanduser().resolve()))
    with _lock:
        if key not in _classes:
            if not _classes:
                atexit.register(_close_classes)
            _classes[key] = PostgresLedger(url, home=home, person=person, everyone=everyone,
                                           wait_s=wait_s)
        return _classes[key]


def _close_classes() -> None:
    """At exit: close the pools (their connections would otherwise be dropped while open)."""
    with _lock:
        for ledger in _classes.values():
            ledger.close()
        _classes.clear()
