"""The ledger on PostgreSQL, for a class that shares one key (``OPENROUTER_NB_LEDGER``).

Same columns and the same reads as the SQLite :class:`~openrouter_nb.ledger.Ledger`; rows
are written through a small psycopg 3 pool (:mod:`openrouter_nb.pg_db`). Each row carries the
participant's ``person``; a participant reads their own rows, an instructor the whole class.
Quota counts (``attempt_times``, ``count_attempts``) cover the whole key, as OpenRouter does.

A row that cannot be written (database down or restarting) goes to a local spool
(:mod:`openrouter_nb.spool`) and is synced back, once, when the database answers again: no
row is lost, and the warning says where the rows wait. The URL's password is never shown.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import pg_db
from .api.errors import LedgerUnavailable
from .ledger import _BOOL_COLUMNS, _TYPES, COLUMNS, _from_sql, _iso, _to_sql, wanted_columns
from .spool import Spool

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import psycopg

_log = logging.getLogger(__name__)

#: How long writing one row waits for the database before it is spooled locally instead (and
#: how long a quota figure waits before the last one known is shown).
RECORD_WAIT_S = 3.0

_PG_TYPES = {"INTEGER": "BIGINT", "REAL": "DOUBLE PRECISION"}

# Versioned like the SQLite ledger's; never edit a released step.
MIGRATIONS: tuple[str, ...] = (
    "CREATE TABLE IF NOT EXISTS attempts (id BIGSERIAL PRIMARY KEY, row_uid TEXT UNIQUE, "
    + ", ".join(f"{name} {_PG_TYPES.get(_TYPES.get(name, 'TEXT'), 'TEXT')}" for name in COLUMNS)
    + ");"
    "CREATE INDEX IF NOT EXISTS attempts_epoch ON attempts(account, epoch);"
    "CREATE INDEX IF NOT EXISTS attempts_call ON attempts(call_id);"
    "CREATE INDEX IF NOT EXISTS attempts_batch ON attempts(batch_id, row_key);"
    "CREATE INDEX IF NOT EXISTS attempts_conversation ON attempts(conversation, conversation_id);"
    "CREATE INDEX IF NOT EXISTS attempts_task ON attempts(task_id, step);"
    "CREATE INDEX IF NOT EXISTS attempts_request ON attempts(request_hash, status);"
    "CREATE INDEX IF NOT EXISTS attempts_person ON attempts(person, epoch);",
    # The shared pacer (class_gate.py): every slot granted (paced: counted in the key's
    # minute window), the requests waiting in line, when each person last got a slot, blocks
    # a 429 put on the whole key, and the instructor's per-person budgets ('*': everyone).
    "CREATE TABLE IF NOT EXISTS pace_sends (id BIGSERIAL PRIMARY KEY, pool TEXT NOT NULL, "
    "person TEXT NOT NULL, stamp DOUBLE PRECISION NOT NULL, paced BOOLEAN NOT NULL);"
    "CREATE INDEX IF NOT EXISTS pace_sends_window ON pace_sends(pool, paced, stamp);"
    "CREATE INDEX IF NOT EXISTS pace_sends_person ON pace_sends(person, stamp);"
    "CREATE TABLE IF NOT EXISTS pace_queue (id BIGSERIAL PRIMARY KEY, pool TEXT NOT NULL, "
    "person TEXT NOT NULL, since DOUBLE PRECISION NOT NULL, pid INTEGER NOT NULL, "
    "backend_start TIMESTAMPTZ, granted DOUBLE PRECISION, send_id BIGINT, refused TEXT, "
    "refused_kind TEXT);"
    "CREATE INDEX IF NOT EXISTS pace_queue_pool ON pace_queue(pool, granted);"
    "CREATE TABLE IF NOT EXISTS pace_people (pool TEXT NOT NULL, person TEXT NOT NULL, "
    "last_grant DOUBLE PRECISION NOT NULL, PRIMARY KEY (pool, person));"
    "CREATE TABLE IF NOT EXISTS pace_pools (pool TEXT PRIMARY KEY, "
    "minute_blocked_until DOUBLE PRECISION NOT NULL DEFAULT 0, "
    "day_blocked_until DOUBLE PRECISION NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS class_budgets (person TEXT PRIMARY KEY, "
    "requests_per_day INTEGER, dollars_per_day DOUBLE PRECISION, set_by TEXT, "
    "set_at DOUBLE PRECISION);",
)

_INSERT = (f"INSERT INTO attempts (row_uid, {', '.join(COLUMNS)}) VALUES "
           f"({', '.join(['%s'] * (len(COLUMNS) + 1))}) ON CONFLICT (row_uid) DO NOTHING")
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM attempts"


class PostgresLedger:
    """Append-only attempt log in a PostgreSQL database shared by a class.

    ``person`` is who this kernel records as; reads show only their rows unless
    ``everyone`` (the instructor). ``home`` holds the local spool for outages.
    """

    read_only = False

    def __init__(self, url: str, *, home: Path, person: str | None = None,
                 everyone: bool = False, wait_s: float = pg_db.DEFAULT_WAIT_S,
                 database: pg_db.Database | None = None) -> None:
        self.db = database or pg_db.Database(url, wait_s=wait_s)
        self.where = self.db.where
        self.person = person
        self.everyone = everyone
        self.spool = Spool(home / "ledger-spool.sqlite", self.where)
        self._warned = False
        self._pending = True  # rows may wait in the spool (from an earlier kernel): sync first
        self._sync_lock = threading.Lock()
        try:
            self.db.run(lambda conn: pg_db.migrate(conn, MIGRATIONS))
        except BaseException:
            self.db.close()  # no pool left reconnecting in the background
            raise
        self.sync()

    def __repr__(self) -> str:
        return f"PostgresLedger({self.where!r}, person={self.person!r})"

    def close(self) -> None:
        self.db.close()
        self.spool.close()

    # -- writing ---------------------------------------------------------------------------
    def _values(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        unknown = set(fields) - set(COLUMNS)
        if unknown:
            raise TypeError(f"unknown ledger column(s): {', '.join(sorted(unknown))}")
        row = dict(fields)
        if row.get("epoch") is None:
            row["epoch"] = time.time()
        row.setdefault("time", _iso(row["epoch"]))
        if self.person is not None:
            row.setdefault("person", self.person)
        return {name: _to_sql(row.get(name)) for name in COLUMNS}

    def record(self, **fields: Any) -> int:
        """Append one attempt; returns its row id (0 when it was spooled locally)."""
        return self._write([(uuid.uuid4().hex, self._values(fields))])

    def record_many(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Append several attempts in one transaction."""
        batch = [(uuid.uuid4().hex, self._values(row)) for row in rows]
        self._write(batch)
        return len(batch)

    def _write(self, batch: list[tuple[str, dict[str, Any]]]) -> int:
        try:
            last = self.db.run(lambda conn: _insert(conn, batch), wait_s=RECORD_WAIT_S)
        except LedgerUnavailable as exc:
            for uid, row in batch:
                self.spool.add(uid, row)
            self._pending = True
            self._warn_spooled(exc)
            return 0
        if self._pending:
            self.sync()
        return last

    def _warn_spooled(self, exc: LedgerUnavailable) -> None:
        message = (f"The class database {self.where} is unreachable, so this attempt was kept "
                   f"in {self.spool.path} and will be synced back when it returns "
                   f"({exc.message.split('(', 1)[-1].split(')')[0]}).")
        _log.warning("ledger: %s", message)
        if not self._warned:
            self._warned = True
            warnings.warn(message, RuntimeWarning, stacklevel=4)

    def sync(self) -> int:
        """Send rows spooled during an outage to the database; returns how many were sent."""
        if not self._sync_lock.acquire(blocking=False):
            return 0  # another thread is syncing
        try:
            sent = self.spool.drain(lambda rows: self.db.run(
                lambda conn: _insert(conn, rows), wait_s=RECORD_WAIT_S))
            self._pending = False
            return sent
        except LedgerUnavailable:
            return 0
        finally:
            self._sync_lock.release()

    # -- reading ---------------------------------------------------------------------------
    def _scope(self, sql: str, params: list[Any], *, whole_class: bool = False) -> str:
        """``sql`` (with ``WHERE`` clauses or none) limited to this person's rows."""
        if whole_class or self.everyone or self.person is None:
            return sql
        params.append(self.person)
        return sql + (" AND" if " WHERE " in sql else " WHERE") + " person = %s"

    def _query(self, sql: str, params: Sequence[Any] = (), *, wait_s: float | None = None
               ) -> list[dict[str, Any]]:
        def read(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
            cursor = conn.execute(sql, params)
            names = [d[0] for d in cursor.description or ()]
            return [_from_sql(dict(zip(names, row, strict=True))) for row in cursor.fetchall()]

        return self.db.run(read, wait_s=wait_s)

    def rows(self, *, call_id: str | None = None, batch_id: str | None = None,
             session_id: str | None = None, limit: int | None = None,
             newest_first: bool = False) -> list[dict[str, Any]]:
        """Attempts as dicts (oldest first unless ``newest_first``), optionally only those of
        one call, batch or session."""
        filters = {"call_id": call_id, "batch_id": batch_id, "session_id": session_id}
        params: list[Any] = [value for value in filters.values() if value is not None]
        sql = _SELECT
        if params:
            sql += " WHERE " + " AND ".join(f"{name} = %s" for name, value in filters.items()
                                            if value is not None)
        sql = self._scope(sql, params)
        sql += " ORDER BY id DESC" if newest_first else " ORDER BY id"
        if limit is not None:
            sql += " LIMIT %s"
            params.append(int(limit))
        return self._query(sql, params)

    def __len__(self) -> int:
        params: list[Any] = []
        return int(self._query(self._scope("SELECT COUNT(*) AS n FROM attempts", params),
                               params)[0]["n"])

    _SENT = ("COALESCE(mode, '') != 'replay' AND account IS NOT DISTINCT FROM %s AND epoch >= %s "
             "AND ((http_status IS NOT NULL AND http_status NOT IN (400, 401)) OR status = 'ok')")
    _FREE = " AND (requested_model LIKE '%%:free' OR requested_model = 'openrouter/free')"

    def attempt_times(self, *, since: float, account: str | None, free_only: bool = True
                      ) -> list[float]:
        """Epochs of the key's attempts sent since ``since`` (the whole class's)."""
        sql = f"SELECT epoch FROM attempts WHERE {self._SENT}" + (self._FREE if free_only else "")
        return [row["epoch"] for row in self._query(sql + " ORDER BY epoch", (account, since),
                                                    wait_s=RECORD_WAIT_S)]

    def count_attempts(self, *, since: float, account: str | None, free_only: bool = True) -> int:
        """How many of the key's attempts were sent since ``since`` (the whole class's), not
        counting refusals of a spent day (429 ``rate_limit_day``)."""
        sql = (f"SELECT COUNT(*) AS n FROM attempts WHERE {self._SENT}"
               + (self._FREE if free_only else "")
               + " AND NOT (http_status IS NOT DISTINCT FROM 429 AND "
                 "error_kind IS NOT DISTINCT FROM 'rate_limit_day')")
        return int(self._query(sql, (account, since), wait_s=RECORD_WAIT_S)[0]["n"])

    def batch_answers(self, batch_id: str) -> dict[str, dict[str, Any]]:
        """The successful (or cached) row of each ``row_key`` of this person's batch."""
        params: list[Any] = [batch_id]
        sql = self._scope(f"{_SELECT} WHERE batch_id = %s AND status IN ('ok', 'cached') AND "
                          "tool_calls IS NULL AND (validated IS NULL OR validated = 1)", params,
                          whole_class=False)
        return {str(row["row_key"]): row for row in self._query(sql + " ORDER BY id", params)}

    def cached_answer(self, request_hash: str) -> dict[str, Any] | None:
        """This person's newest answered (and valid) row sent with ``request_hash``."""
        params: list[Any] = [request_hash]
        sql = self._own(f"{_SELECT} WHERE request_hash = %s AND status = 'ok' AND (validated IS "
                        "NULL OR validated = 1) AND tool_calls IS NULL", params)
        rows = self._query(sql + " ORDER BY id DESC LIMIT 1", params)
        return rows[0] if rows else None

    def _own(self, sql: str, params: list[Any]) -> str:
        """``sql`` limited to this person's rows, even for an instructor (their cache and
        their conversations are their own)."""
        if self.person is None:
            return sql + " AND person IS NULL"
        params.append(self.person)
        return sql + " AND person = %s"

    def conversation_turns(self, name: str) -> tuple[str, str, list[str]] | None:
        """This person's newest conversation called ``name``: its id, its model, and each
        answered turn's ``turn_messages`` in turn order (None when there is none)."""
        params: list[Any] = [name]
        found = self._query(self._own("SELECT conversation_id FROM attempts WHERE conversation "
                                      "= %s AND turn_messages IS NOT NULL", params)
                            + " ORDER BY id DESC LIMIT 1", params)
        if not found:
            return None
        conversation_id = found[0]["conversation_id"]
        rows = self._query(
            "SELECT turn, turn_messages FROM attempts WHERE conversation_id = %s AND "
            "status IN ('ok', 'cached') AND turn_messages IS NOT NULL AND (validated IS NULL OR "
            "validated = 1) ORDER BY turn, id", (conversation_id,))
        turns = {row["turn"]: row["turn_messages"] for row in rows}
        first = self._query("SELECT requested_model FROM attempts WHERE conversation_id = %s "
                            "AND attempt = 1 ORDER BY id DESC LIMIT 1", (conversation_id,))
        return conversation_id, first[0]["requested_model"], [turns[t] for t in sorted(turns)]

    def dataframe(self, *, limit: int | None = None, newest_first: bool = False,
                  columns: Sequence[str] | str | None = None,
                  everyone: bool | None = None) -> pd.DataFrame:
        """The ledger as a DataFrame, as :meth:`Ledger.dataframe` gives it: this person's rows,
        or the whole class's for an instructor (``everyone=False``: only their own)."""
        from .columnar import block_from_rows, to_frame

        wanted = wanted_columns(columns)
        if self._pending:  # rows kept during an outage belong in the frame
            self.sync()
        if everyone and not self.everyone:
            raise PermissionError("The whole class's rows are for its instructors (named in "
                                  "OPENROUTER_NB_INSTRUCTORS); this ledger shows your own.")
        params: list[Any] = []
        sql = f"SELECT id, {', '.join(COLUMNS)} FROM attempts"
        if self.person is not None and (everyone is False or not self.everyone):
            sql += " WHERE person = %s"
            params.append(self.person)
        sql += " ORDER BY id DESC" if newest_first else " ORDER BY id"
        if limit is not None:
            sql += " LIMIT %s"
            params.append(int(limit))
        rows = self.db.run(lambda conn: conn.execute(sql, params).fetchall())
        frame = to_frame(block_from_rows(rows, COLUMNS, _TYPES), wanted, kinds=_TYPES,
                         booleans=_BOOL_COLUMNS)
        return frame.reset_index(drop=True)


def _insert(conn: psycopg.Connection[Any], batch: list[tuple[str, dict[str, Any]]]) -> int:
    """Insert ``batch`` (row uid, values) in one transaction; the last new id (0: none new)."""
    last = 0
    with conn.transaction(), conn.cursor() as cursor:
        for uid, row in batch:
            cursor.execute(_INSERT + " RETURNING id",
                           [uid, *(row.get(name) for name in COLUMNS)])
            found = cursor.fetchone()
            last = int(found[0]) if found else last
    return last


__all__ = ["MIGRATIONS", "PostgresLedger"]
