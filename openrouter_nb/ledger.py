"""The ledger: one SQLite row per attempt, successes, failures and retries alike.

The file is ``$OPENROUTER_NB_HOME/ledger.sqlite`` in WAL mode. Each row is committed
before the call that made it returns, so a kernel that dies loses nothing already
answered. Several threads share one connection behind a lock; several kernels share the
file through SQLite's own locking (``busy_timeout``). Browse it with any SQLite tool.

pandas is imported only by :meth:`Ledger.dataframe`.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

#: The columns DESIGN.md promises, in order, then our extras.
CORE_COLUMNS: tuple[str, ...] = (
    "time", "call_id", "attempt", "requested_model", "served_model", "provider",
    "generation_id", "status", "error_kind", "http_status", "latency_s", "ttft_s",
    "prompt_tokens", "completion_tokens", "cost", "validated", "fallback", "sandbox",
    "prompt", "response",
)
EXTRA_COLUMNS: tuple[str, ...] = (
    "epoch", "error_message", "validation_error", "finish_reason", "stream", "wait_s",
    "session_id", "account", "base_url", "batch_id", "row_key", "mode",
)
COLUMNS: tuple[str, ...] = CORE_COLUMNS + EXTRA_COLUMNS

_TYPES = {
    "attempt": "INTEGER", "http_status": "INTEGER", "prompt_tokens": "INTEGER",
    "completion_tokens": "INTEGER", "validated": "INTEGER", "sandbox": "INTEGER",
    "stream": "INTEGER", "latency_s": "REAL", "ttft_s": "REAL", "cost": "REAL",
    "epoch": "REAL", "wait_s": "REAL",
}
_BOOL_COLUMNS = ("validated", "sandbox", "stream")

# Each migration takes the schema one version further; never edit a released one.
_MIGRATIONS: tuple[str, ...] = (
    "CREATE TABLE IF NOT EXISTS attempts (id INTEGER PRIMARY KEY AUTOINCREMENT, "
    + ", ".join(f"{name} {_TYPES.get(name, 'TEXT')}" for name in COLUMNS)
    + ");"
    "CREATE INDEX IF NOT EXISTS attempts_epoch ON attempts(account, epoch);"
    "CREATE INDEX IF NOT EXISTS attempts_call ON attempts(call_id);"
    "CREATE INDEX IF NOT EXISTS attempts_batch ON attempts(batch_id, row_key);",
)


def new_call_id() -> str:
    """A short, unique id that groups the attempts of one call."""
    return uuid.uuid4().hex[:12]


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).isoformat(timespec="milliseconds")


class Ledger:
    """Append-only attempt log on SQLite. Safe across threads and processes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._frames: dict[tuple[str, ...], tuple[int, pd.DataFrame]] = {}
        self._conn = sqlite3.connect(
            str(self.path), timeout=30.0, check_same_thread=False, isolation_level=None
        )
        self._conn.execute("PRAGMA busy_timeout = 30000")
        self._conn.execute("PRAGMA journal_mode = WAL")
        # NORMAL in WAL mode survives a killed process; only a power cut may lose the tail.
        self._conn.execute("PRAGMA synchronous = NORMAL")
        self._migrate()
        self._insert_sql = (
            f"INSERT INTO attempts ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
        )

    def _migrate(self) -> None:
        with self._lock:
            version = self._conn.execute("PRAGMA user_version").fetchone()[0]
            for number, script in enumerate(_MIGRATIONS[version:], start=version + 1):
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    # Another kernel may have migrated while we waited for the lock.
                    current = self._conn.execute("PRAGMA user_version").fetchone()[0]
                    if current < number:
                        for statement in filter(str.strip, script.split(";")):
                            self._conn.execute(statement)
                        self._conn.execute(f"PRAGMA user_version = {number}")
                    self._conn.execute("COMMIT")
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- writing ---------------------------------------------------------------------------
    def record(self, **fields: Any) -> int:
        """Append one attempt and commit it; returns the row id.

        Unknown field names raise ``TypeError`` so that a typo never loses data silently.
        ``time`` and ``epoch`` default to now.
        """
        unknown = set(fields) - set(COLUMNS)
        if unknown:
            raise TypeError(f"unknown ledger column(s): {', '.join(sorted(unknown))}")
        epoch = fields.get("epoch")
        if epoch is None:
            epoch = fields["epoch"] = time.time()
        fields.setdefault("time", _iso(epoch))
        values = [_to_sql(fields.get(name)) for name in COLUMNS]
        with self._lock:
            cursor = self._conn.execute(self._insert_sql, values)
            return int(cursor.lastrowid or 0)

    def record_many(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Append several attempts in one transaction (bulk imports, benchmarks)."""
        now = time.time()
        values = []
        for row in rows:
            row = dict(row)
            row.setdefault("epoch", now)
            row.setdefault("time", _iso(row["epoch"]))
            values.append([_to_sql(row.get(name)) for name in COLUMNS])
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                self._conn.executemany(self._insert_sql, values)
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return len(values)

    # -- reading ---------------------------------------------------------------------------
    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self._lock:
            cursor = self._conn.execute(sql, params)
            names = [d[0] for d in cursor.description]
            rows = cursor.fetchall()
        return [_from_sql(dict(zip(names, row, strict=True))) for row in rows]

    def rows(self, *, call_id: str | None = None, limit: int | None = None,
             newest_first: bool = False) -> list[dict[str, Any]]:
        """Attempts as dicts (oldest first unless ``newest_first``)."""
        sql = f"SELECT {', '.join(COLUMNS)} FROM attempts"
        params: list[Any] = []
        if call_id is not None:
            sql += " WHERE call_id = ?"
            params.append(call_id)
        sql += " ORDER BY id DESC" if newest_first else " ORDER BY id"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        return self._query(sql, params)

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM attempts").fetchone()[0])

    _SENT = ("COALESCE(mode, '') != 'replay' AND (epoch >= ? AND account IS ? "
             "AND http_status IS NOT NULL AND http_status NOT IN (400, 401) "
             "OR (epoch >= ? AND account IS ? AND status = 'ok'))")

    def _sent_where(self, free_only: bool) -> str:
        # An attempt counts if it got an HTTP status (or an answer); attempts refused
        # locally (budget, sensitive input, a known daily block) never reached OpenRouter,
        # and malformed or unauthenticated requests (400, 401) never reach its limiter.
        # Replayed answers were never sent at all.
        # Network errors and time-outs have no status: they may not have arrived, and
        # are not counted.
        sql = f"({self._SENT})"
        if free_only:
            sql += " AND (requested_model LIKE '%:free' OR requested_model = 'openrouter/free')"
        return sql

    def attempt_times(self, *, since: float, account: str | None, free_only: bool = True
                      ) -> list[float]:
        """Epochs of attempts sent to OpenRouter since ``since`` (for quota accounting)."""
        sql = f"SELECT epoch FROM attempts WHERE {self._sent_where(free_only)} ORDER BY epoch"
        with self._lock:
            rows = self._conn.execute(sql, (since, account, since, account)).fetchall()
        return [r[0] for r in rows]

    def count_attempts(self, *, since: float, account: str | None, free_only: bool = True) -> int:
        """How many attempts were sent since ``since`` (the daily quota count)."""
        sql = f"SELECT COUNT(*) FROM attempts WHERE {self._sent_where(free_only)}"
        with self._lock:
            return int(self._conn.execute(sql, (since, account, since, account)).fetchone()[0])

    def batch_answers(self, batch_id: str) -> dict[str, dict[str, Any]]:
        """The successful row of each ``row_key`` of a batch, for resuming it."""
        rows = self._query(
            f"SELECT {', '.join(COLUMNS)} FROM attempts WHERE batch_id = ? AND status = 'ok' "
            "AND (validated IS NULL OR validated = 1) ORDER BY id", (batch_id,),
        )
        return {str(row["row_key"]): row for row in rows}

    def dataframe(self, *, limit: int | None = None, newest_first: bool = False,
                  columns: Sequence[str] | str | None = None) -> pd.DataFrame:
        """The ledger as a pandas DataFrame with a UTC datetime ``time`` column.

        By default the DESIGN.md columns plus ``error_message``; ``columns="all"`` adds every
        extra column, or name the ones you want. Rows are append-only with increasing ids,
        so the frame is kept in memory and later calls read only the rows added since
        (by any kernel); the first call pays for the whole table.
        """
        import pandas as pd

        if columns == "all":
            wanted = list(COLUMNS)
        elif columns is None:
            wanted = list(CORE_COLUMNS) + ["error_message"]
        else:
            wanted = list(columns)
        unknown = set(wanted) - set(COLUMNS)
        if unknown:
            raise ValueError(f"unknown ledger column(s): {', '.join(sorted(unknown))}")
        with self._lock:
            key = tuple(wanted)
            last_id, cached = self._frames.get(key, (0, None))
            new_id, added = self._load(wanted, after=last_id)
            if cached is None:
                frame = added
            elif len(added):
                frame = pd.concat([cached, added], ignore_index=True)
                for name in frame.columns:
                    if cached[name].dtype != added[name].dtype:
                        # e.g. text beside an all-NULL chunk: infer again, as a fresh load does
                        frame[name] = pd.Series(frame[name].tolist(), index=frame.index)
            else:
                frame = cached
            self._frames[key] = (new_id, frame)
        if newest_first:
            frame = frame.iloc[::-1]
        if limit is not None:
            frame = frame.iloc[: int(limit)]
        return frame.reset_index(drop=True) if (newest_first or limit is not None) \
            else frame.copy()

    def _load(self, wanted: list[str], *, after: int) -> tuple[int, pd.DataFrame]:
        """Rows with ``id > after`` as a frame, and the highest id read. Call under the lock."""
        import pandas as pd

        # ``time`` is rebuilt from the float ``epoch``: parsing 100k ISO strings costs more
        # than the rest of the load.
        selected = list(dict.fromkeys("epoch" if name == "time" else name for name in wanted))
        data = self._conn.execute(
            f"SELECT id, {', '.join(selected)} FROM attempts WHERE id > ? ORDER BY id",
            (after,)).fetchall()
        frame = pd.DataFrame.from_records(data, columns=["id", *selected])
        last = int(frame["id"].iloc[-1]) if len(frame) else after
        if "time" in wanted:
            epoch = frame["epoch"] if "epoch" in wanted else frame.pop("epoch")
            frame["time"] = pd.to_datetime(epoch, unit="s", utc=True)
        for name in _BOOL_COLUMNS:
            if name in frame:
                frame[name] = frame[name].astype("boolean")
        for name, kind in _TYPES.items():
            if kind == "INTEGER" and name in frame and name not in _BOOL_COLUMNS:
                frame[name] = frame[name].astype("Int64")  # 502, not 502.0, beside NULLs
        return last, frame[wanted]


def _to_sql(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if value is None or isinstance(value, (int, float, str)):
        return value
    return str(value)


def _from_sql(row: dict[str, Any]) -> dict[str, Any]:
    for name in _BOOL_COLUMNS:
        if row.get(name) is not None:
            row[name] = bool(row[name])
    return row


__all__ = ["COLUMNS", "CORE_COLUMNS", "Ledger", "new_call_id"]
