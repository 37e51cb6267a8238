"""Rows kept on local disk while the class database is unreachable, synced back later.

A row that cannot reach PostgreSQL is never dropped: it goes into ``ledger-spool.sqlite`` in
the home folder (SQLite, WAL, committed at once) with the unique ``row_uid`` it will have in
PostgreSQL. :meth:`Spool.drain` hands the rows to the database in order; the database ignores
a ``row_uid`` it already holds, so a kernel killed halfway through a sync, or two kernels
syncing the same spool, never duplicate a row.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from . import ledger_file as _file

__all__ = ["Spool"]


class Spool:
    """A local queue of ledger rows for one class database (``target``, a password-free name)."""

    def __init__(self, path: Path, target: str) -> None:
        self.path = path
        self.target = target
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            _file.prepare_folder(self.path)
            conn = _file.connect(str(self.path))

            def first_use() -> None:
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("CREATE TABLE IF NOT EXISTS spool (seq INTEGER PRIMARY KEY "
                             "AUTOINCREMENT, target TEXT NOT NULL, row_uid TEXT NOT NULL UNIQUE, "
                             "row TEXT NOT NULL)")

            _file.retry_while_busy(first_use)
            self._conn = conn
        return self._conn

    def add(self, row_uid: str, row: Mapping[str, Any]) -> None:
        """Keep ``row`` (already SQL-ready values) until :meth:`drain` delivers it."""
        with self._lock:
            self._connection().execute(
                "INSERT OR IGNORE INTO spool (target, row_uid, row) VALUES (?, ?, ?)",
                (self.target, row_uid, json.dumps(dict(row))))

    def __len__(self) -> int:
        if self._conn is None and not self.path.exists():
            return 0
        with self._lock:
            found = self._connection().execute(
                "SELECT COUNT(*) FROM spool WHERE target = ?", (self.target,)).fetchone()
        return int(found[0])

    def drain(self, deliver: Callable[[list[tuple[str, dict[str, Any]]]], object],
              batch: int = 500) -> int:
        """Hand the spooled rows, oldest first, to ``deliver`` (which raises if it could not
        store them) and forget each batch once delivered; returns how many were delivered."""
        delivered = 0
        while True:
            with self._lock:
                rows = self._connection().execute(
                    "SELECT seq, row_uid, row FROM spool WHERE target = ? ORDER BY seq LIMIT ?",
                    (self.target, batch)).fetchall()
            if not rows:
                return delivered
            deliver([(uid, json.loads(text)) for _seq, uid, text in rows])
            with self._lock:
                self._connection().execute(
                    "DELETE FROM spool WHERE target = ? AND seq <= ?", (self.target, rows[-1][0]))
            delivered += len(rows)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
