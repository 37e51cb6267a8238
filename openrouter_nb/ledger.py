"""The ledger: one SQLite row per attempt, successes, failures and retries alike.

The file is ``$OPENROUTER_NB_HOME/ledger.sqlite`` in WAL mode. Each row is committed
before the call that made it returns, so a kernel that dies loses nothing already
answered. Several threads share one connection behind a lock; several kernels share the
file through SQLite's own locking (``busy_timeout``). Browse it with any SQLite tool.

Every ``CHUNK_ROWS`` rows are also copied, column by column, into a chunk file in
``ledger.sqlite-columns/`` (listed in the ``column_chunks`` table), so a new kernel loads a
large ledger without building millions of Python objects (:mod:`openrouter_nb.columnar`).
The copy is a cache: delete the folder and it is rebuilt; SQLite stays the record.

pandas and numpy are imported only when a frame is built or rows are copied.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import ledger_file as _file

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from .columnar import Block

_log = logging.getLogger(__name__)

#: Rows left only in SQLite before they are copied into a chunk file.
CHUNK_ROWS = 4096

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
    # migration 3: conversations and reasoning
    "conversation_id", "conversation", "turn", "turn_messages", "reasoning", "reasoning_tokens",
    # migration 4: attachments (metadata only, JSON) and tool tasks
    "attachments", "task_id", "step", "tool_calls",
    # migration 5: the cache (a hash of what a request sends)
    "request_hash",
    # migration 6: classes (who asked, when a class shares one key; see identity.py)
    "person",
)
COLUMNS: tuple[str, ...] = CORE_COLUMNS + EXTRA_COLUMNS

_TYPES = {
    "attempt": "INTEGER", "http_status": "INTEGER", "prompt_tokens": "INTEGER",
    "completion_tokens": "INTEGER", "validated": "INTEGER", "sandbox": "INTEGER",
    "stream": "INTEGER", "latency_s": "REAL", "ttft_s": "REAL", "cost": "REAL",
    "epoch": "REAL", "wait_s": "REAL", "turn": "INTEGER", "reasoning_tokens": "INTEGER",
    "step": "INTEGER",
}
_BOOL_COLUMNS = ("validated", "sandbox", "stream")

# Each migration takes the schema one version further; never edit a released one.
_V1_COLUMNS = COLUMNS[:COLUMNS.index("mode") + 1]  # the columns of the first schema
_MIGRATIONS: tuple[str, ...] = (
    "CREATE TABLE IF NOT EXISTS attempts (id INTEGER PRIMARY KEY AUTOINCREMENT, "
    + ", ".join(f"{name} {_TYPES.get(name, 'TEXT')}" for name in _V1_COLUMNS)
    + ");"
    "CREATE INDEX IF NOT EXISTS attempts_epoch ON attempts(account, epoch);"
    "CREATE INDEX IF NOT EXISTS attempts_call ON attempts(call_id);"
    "CREATE INDEX IF NOT EXISTS attempts_batch ON attempts(batch_id, row_key);",
    # The chunk files of the columnar copy; each holds every row with after_id < id <= last_id.
    "CREATE TABLE IF NOT EXISTS column_chunks (file TEXT PRIMARY KEY, "
    "after_id INTEGER NOT NULL UNIQUE, last_id INTEGER NOT NULL, rows INTEGER NOT NULL);",
    # Conversations (every turn's attempts share conversation_id; turn_messages holds the
    # user and assistant messages a turn added, as sent, on its answered row) and reasoning.
    "ALTER TABLE attempts ADD COLUMN conversation_id TEXT;"
    "ALTER TABLE attempts ADD COLUMN conversation TEXT;"
    "ALTER TABLE attempts ADD COLUMN turn INTEGER;"
    "ALTER TABLE attempts ADD COLUMN turn_messages TEXT;"
    "ALTER TABLE attempts ADD COLUMN reasoning TEXT;"
    "ALTER TABLE attempts ADD COLUMN reasoning_tokens INTEGER;"
    "CREATE INDEX IF NOT EXISTS attempts_conversation ON attempts(conversation, conversation_id);",
    # Attachments sent (name, MIME type, bytes, pixels, SHA-256: never the bytes) and tool
    # tasks (every model call of a task shares task_id; step counts them; tool_calls holds the
    # calls a step asked for, with shortened results).
    "ALTER TABLE attempts ADD COLUMN attachments TEXT;"
    "ALTER TABLE attempts ADD COLUMN task_id TEXT;"
    "ALTER TABLE attempts ADD COLUMN step INTEGER;"
    "ALTER TABLE attempts ADD COLUMN tool_calls TEXT;"
    "CREATE INDEX IF NOT EXISTS attempts_task ON attempts(task_id, step);",
    # The cache: request_hash is a SHA-256 of what a call sends (model, messages, options);
    # an answered row with the same hash can answer the call again without sending it.
    "ALTER TABLE attempts ADD COLUMN request_hash TEXT;"
    "CREATE INDEX IF NOT EXISTS attempts_request ON attempts(request_hash, status);",
    # Classes: the participant's name (JUPYTERHUB_USER or a configured one), nothing else.
    "ALTER TABLE attempts ADD COLUMN person TEXT;"
    "CREATE INDEX IF NOT EXISTS attempts_person ON attempts(person, epoch);",
)


def wanted_columns(columns: Sequence[str] | str | None) -> list[str]:
    """The frame's columns: the DESIGN.md ones and ``error_message`` (None), every one
    (``"all"``) or those named; an unknown name is a ``ValueError``."""
    if columns == "all":
        return list(COLUMNS)
    wanted = list(CORE_COLUMNS) + ["error_message"] if columns is None else list(columns)
    unknown = set(wanted) - set(COLUMNS)
    if unknown:
        raise ValueError(f"unknown ledger column(s): {', '.join(sorted(unknown))}")
    return wanted


def new_call_id() -> str:
    """A short, unique id that groups the attempts of one call."""
    return uuid.uuid4().hex[:12]


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).isoformat(timespec="milliseconds")


class Ledger:
    """Append-only attempt log on SQLite. Safe across threads and processes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        #: Where the chunk files of the columnar copy live.
        self.columns_dir = self.path.with_name(self.path.name + "-columns")
        #: The file or its folder cannot be written: rows can be read, not recorded.
        self.read_only = False
        self._unchunked = 0  # rows this Ledger appended since it last tried a copy
        self._damaged = False  # a chunk file was missing or unreadable: copy again
        self._lock = threading.Lock()
        self._frames: dict[tuple[str, ...], tuple[int, pd.DataFrame]] = {}
        self._conn = self._open()
        #: Where the rows are, for messages.
        self.where = str(self.path)
        self._insert_sql = (
            f"INSERT INTO attempts ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
        )

    def _open(self) -> sqlite3.Connection:
        """A ready connection: WAL mode and the current schema, or read-only when the file
        or its folder cannot be written. A damaged file is moved aside and a new one begun.
        Problems with the folder or file raise ``HomeFolderError``."""
        _file.prepare_folder(self.path)
        found = _file.file_identity(self.path)
        damage = found and _file.not_a_database(self.path)
        if damage:
            _file.move_aside(self.path, self.columns_dir, damage, found)
            found = _file.file_identity(self.path)
        if found is None or _file.file_writable(self.path):
            try:
                return self._open_writable()
            except sqlite3.DatabaseError as exc:
                if _file.is_damaged(exc):
                    _file.move_aside(self.path, self.columns_dir, exc, found)
                    return self._open_writable()
                if not _file.is_unwritable(exc):
                    raise
                if not self.path.is_file():
                    raise _file.cannot_create(self.path) from None
        self.read_only = True
        conn = _file.connect_read_only(self.path)
        _file.read_as_current(conn, COLUMNS)
        _log.warning("ledger: %s cannot be written, so it is open read-only", self.path)
        return conn

    def _open_writable(self) -> sqlite3.Connection:
        self._conn = _file.connect(str(self.path))
        try:
            _file.retry_while_busy(self._first_use)
        except BaseException:
            self._conn.close()
            raise
        return self._conn

    def _first_use(self) -> None:
        """WAL mode, then the schema: safe to run again after a ``database is locked``."""
        self._conn.execute("PRAGMA journal_mode = WAL")
        # NORMAL in WAL mode survives a killed process; only a power cut may lose the tail.
        self._conn.execute("PRAGMA synchronous = NORMAL")
        self._migrate()

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
        if self.read_only:
            raise _file.read_only_error(self.path)
        epoch = fields.get("epoch")
        if epoch is None:
            epoch = fields["epoch"] = time.time()
        fields.setdefault("time", _iso(epoch))
        values = [_to_sql(fields.get(name)) for name in COLUMNS]
        with self._lock:
            cursor = self._conn.execute(self._insert_sql, values)
            self._unchunked += 1
        if self._unchunked >= CHUNK_ROWS:
            self._copy_to_chunks()
        return int(cursor.lastrowid or 0)

    def record_many(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Append several attempts in one transaction (bulk imports, benchmarks)."""
        if self.read_only:
            raise _file.read_only_error(self.path)
        now = time.time()
        values = []
        for row in rows:
            row = dict(row)
            unknown = set(row) - set(COLUMNS)
            if unknown:
                raise TypeError(f"unknown ledger column(s): {', '.join(sorted(unknown))}")
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
            self._unchunked += len(values)
        if self._unchunked >= CHUNK_ROWS:
            self._copy_to_chunks()
        return len(values)

    # -- reading ---------------------------------------------------------------------------
    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self._lock:
            cursor = self._conn.execute(sql, params)
            names = [d[0] for d in cursor.description]
            rows = cursor.fetchall()
        return [_from_sql(dict(zip(names, row, strict=True))) for row in rows]

    def rows(self, *, call_id: str | None = None, batch_id: str | None = None,
             session_id: str | None = None, limit: int | None = None,
             newest_first: bool = False) -> list[dict[str, Any]]:
        """Attempts as dicts (oldest first unless ``newest_first``), optionally only those of
        one call, batch or session."""
        sql = f"SELECT {', '.join(COLUMNS)} FROM attempts"
        filters = {"call_id": call_id, "batch_id": batch_id, "session_id": session_id}
        params: list[Any] = [value for value in filters.values() if value is not None]
        if params:
            sql += " WHERE " + " AND ".join(f"{name} = ?" for name, value in filters.items()
                                            if value is not None)
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
        """How many attempts were sent since ``since`` (the daily quota count).

        A request refused because the day was already spent (a 429 ``rate_limit_day``) is
        not counted: the day's count never exceeds its limit (the sandbox counts the same way).
        """
        sql = (f"SELECT COUNT(*) FROM attempts WHERE {self._sent_where(free_only)} AND NOT "
               "(http_status IS 429 AND error_kind IS 'rate_limit_day')")
        with self._lock:
            return int(self._conn.execute(sql, (since, account, since, account)).fetchone()[0])

    def batch_answers(self, batch_id: str) -> dict[str, dict[str, Any]]:
        """The successful (or cached) row of each ``row_key`` of a batch, for resuming it
        (a tool step's row is not the row's answer: its task may have stopped after it)."""
        rows = self._query(
            f"SELECT {', '.join(COLUMNS)} FROM attempts WHERE batch_id = ? "
            "AND status IN ('ok', 'cached') AND tool_calls IS NULL "
            "AND (validated IS NULL OR validated = 1) ORDER BY id", (batch_id,),
        )
        return {str(row["row_key"]): row for row in rows}

    def cached_answer(self, request_hash: str) -> dict[str, Any] | None:
        """The newest answered (and, with a schema, valid) row sent with ``request_hash``;
        a tool step's row is not an answer (its tools must run again), so it never is one."""
        rows = self._query(
            f"SELECT {', '.join(COLUMNS)} FROM attempts WHERE request_hash = ? AND status = 'ok' "
            "AND (validated IS NULL OR validated = 1) AND tool_calls IS NULL "
            "ORDER BY id DESC LIMIT 1", (request_hash,),
        )
        return rows[0] if rows else None

    def conversation_turns(self, name: str) -> tuple[str, str, list[str]] | None:
        """The newest conversation called ``name``: its id, its model, and each answered
        turn's ``turn_messages`` in turn order (``None`` when there is none)."""
        found = self._query("SELECT conversation_id FROM attempts WHERE conversation = ? AND "
                            "turn_messages IS NOT NULL ORDER BY id DESC LIMIT 1", (name,))
        if not found:
            return None
        conversation_id = found[0]["conversation_id"]
        rows = self._query(
            "SELECT turn, turn_messages FROM attempts WHERE conversation_id = ? AND "
            "status IN ('ok', 'cached') AND turn_messages IS NOT NULL AND (validated IS NULL OR "
            "validated = 1) ORDER BY turn, id", (conversation_id,))
        turns = {row["turn"]: row["turn_messages"] for row in rows}  # the last answer of a turn
        first = self._query("SELECT requested_model FROM attempts WHERE conversation_id = ? "
                            "AND attempt = 1 ORDER BY id DESC LIMIT 1", (conversation_id,))
        return conversation_id, first[0]["requested_model"], [turns[t] for t in sorted(turns)]

    def dataframe(self, *, limit: int | None = None, newest_first: bool = False,
                  columns: Sequence[str] | str | None = None) -> pd.DataFrame:
        """The ledger as a pandas DataFrame with a UTC datetime ``time`` column.

        By default the DESIGN.md columns plus ``error_message``; ``columns="all"`` adds every
        extra column, or name the ones you want. Dtypes follow the schema (``Int64``,
        ``boolean``, ``float64``, text), whatever rows are present. Older rows come from the
        chunk files beside the database (see :mod:`openrouter_nb.columnar`), the newest from
        SQLite; the frame is then kept in memory and later calls read only the rows added
        since, by any kernel.
        """
        import pandas as pd

        wanted = wanted_columns(columns)
        with self._lock:
            key = tuple(wanted)
            last_id, cached = self._frames.get(key, (0, None))
            new_id, added, uncopied = self._load(wanted, after=last_id)
            if cached is None:
                frame = added
            elif len(added):
                frame = pd.concat([cached, added], ignore_index=True)
            else:
                frame = cached
            self._frames[key] = (new_id, frame)
        if self._damaged or len(uncopied[1]) >= CHUNK_ROWS:
            self._copy_to_chunks(uncopied)
        if newest_first:
            frame = frame.iloc[::-1]
        if limit is not None:
            frame = frame.iloc[: int(limit)]
        return frame.reset_index(drop=True) if (newest_first or limit is not None) \
            else frame.copy()

    def _load(self, wanted: list[str], *, after: int) -> tuple[int, pd.DataFrame, tuple[int, Block]]:
        """Rows with ``id > after`` as a frame and the highest id read, plus the rows read
        from SQLite with the id they follow (for :meth:`_copy_to_chunks`). Under the lock."""
        from .columnar import ChunkError, concat_blocks, to_frame

        # ``time`` is rebuilt from the float ``epoch``: parsing ISO strings costs far more.
        sources = list(dict.fromkeys("epoch" if name == "time" else name for name in wanted))
        blocks: list[Block] = []
        start = after
        for last_try in (False, True):
            self._conn.execute("BEGIN")  # one snapshot of the manifest and the rows
            try:
                if start == 0:  # the whole table: chunk files for what they hold
                    chunks = self._manifest()
                    try:
                        blocks = [self._read_chunk(chunk, sources) for chunk in chunks]
                        after = chunks[-1].last_id if chunks else 0
                    except (OSError, ChunkError):
                        if not last_try:  # another kernel may have merged it away just now
                            continue
                        self._damaged, blocks = True, []  # read it all; the copy is redone
                tail = self._sqlite_block(after=after)
                break
            finally:
                self._conn.execute("COMMIT")
        block = concat_blocks([*blocks, _select(tail, sources)]) \
            if any(len(part) for part in blocks) else _select(tail, sources)
        last = int(block.ids[-1]) if len(block) else after
        frame = to_frame(block, wanted, kinds=_TYPES, booleans=_BOOL_COLUMNS)
        return last, frame, (after, tail)

    # -- the columnar copy -----------------------------------------------------------------
    def _sqlite_block(self, *, after: int, upto: int | None = None) -> Block:
        """Rows ``after < id <= upto`` (every column) straight from SQLite."""
        from .columnar import block_from_rows

        sql = f"SELECT id, {', '.join(COLUMNS)} FROM attempts WHERE id > ?"
        params: list[int] = [after]
        if upto is not None:
            sql += " AND id <= ?"
            params.append(upto)
        rows = self._conn.execute(sql + " ORDER BY id", params).fetchall()
        return block_from_rows(rows, COLUMNS, _TYPES)

    def _manifest(self) -> list[_Chunk]:
        """The chunk files in id order, cut at the first one that does not follow on."""
        chunks, last = [], 0
        for row in self._conn.execute(
                "SELECT file, after_id, last_id, rows FROM column_chunks ORDER BY after_id"):
            chunk = _Chunk(*row)
            if chunk.after_id != last or chunk.last_id <= last:
                break
            chunks.append(chunk)
            last = chunk.last_id
        return chunks

    def _read_chunk(self, chunk: _Chunk, names: Sequence[str]) -> Block:
        """A chunk file's rows, or ``ChunkError``/``OSError`` if it is gone or damaged."""
        from .columnar import ChunkError, decode

        block = decode((self.columns_dir / chunk.file).read_bytes(), names)
        if len(block) != chunk.rows or (len(block) and (
                block.ids[0] <= chunk.after_id or block.ids[-1] != chunk.last_id)):
            raise ChunkError(f"{chunk.file} does not hold the rows the manifest lists")
        return block

    def _chunk_block(self, chunk: _Chunk, names: Sequence[str]) -> Block:
        """A chunk file's rows; from SQLite if the file is gone or damaged."""
        from .columnar import ChunkError

        try:
            return self._read_chunk(chunk, names)
        except (OSError, ChunkError):
            self._damaged = True
            return _select(self._sqlite_block(after=chunk.after_id, upto=chunk.last_id), names)

    def _copy_to_chunks(self, uncopied: tuple[int, Block] | None = None) -> None:
        """Copy the rows that are only in SQLite into a chunk file, if there are
        ``CHUNK_ROWS`` of them, merging it with the newest chunks while they are no larger.

        Best effort: SQLite already holds every row, so a failure here (read-only folder,
        a lock held too long) is logged and the rows stay where they are.
        """
        if self.read_only:
            return
        obsolete: list[str] = []
        try:
            with self._lock:
                self._unchunked = 0
                self._conn.execute("BEGIN IMMEDIATE")  # one copier at a time, any kernel
                try:
                    obsolete = self._copy_locked(uncopied)
                    self._conn.execute("COMMIT")
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
        except (OSError, sqlite3.Error, ValueError) as exc:
            self._damaged = False  # not again on every frame: the next cold load retries
            _log.warning("ledger: rows stay in SQLite only, the columnar copy failed: %s", exc)
            return
        for name in obsolete:
            try:
                (self.columns_dir / name).unlink(missing_ok=True)
            except OSError:  # open in a reader on Windows: swept by a later copy
                pass

    def _copy_locked(self, uncopied: tuple[int, Block] | None) -> list[str]:
        """The copy, inside a write transaction; returns the files no longer listed."""
        from .columnar import concat_blocks

        chunks = self._manifest()
        listed = [row[0] for row in self._conn.execute("SELECT file FROM column_chunks")]
        if self._damaged or len(listed) != len(chunks) or not all(
                (self.columns_dir / chunk.file).is_file() for chunk in chunks):
            # A file gone, damaged or out of sequence: copy everything again, once.
            self._conn.execute("DELETE FROM column_chunks")
            chunks = []
        covered = chunks[-1].last_id if chunks else 0
        if uncopied is not None and uncopied[0] == covered and len(uncopied[1]):
            tail = uncopied[1]
            newer = self._sqlite_block(after=int(tail.ids[-1]))
            tail = concat_blocks([tail, newer]) if len(newer) else tail
        else:
            tail = self._sqlite_block(after=covered)
        if len(tail) >= CHUNK_ROWS:
            self._write_chunk(chunks, tail, covered)
        self._damaged = False
        keep = {row[0] for row in self._conn.execute("SELECT file FROM column_chunks")}
        if not self.columns_dir.is_dir():
            return []
        # Holding the write lock, no other copier is writing: anything unlisted is left over
        # (merged away, or written by a kernel that died before committing).
        return [path.name for path in self.columns_dir.iterdir() if path.name not in keep]

    def _write_chunk(self, chunks: list[_Chunk], tail: Block, covered: int) -> None:
        """Write ``tail`` (rows after ``covered``) merged with the newest chunks that are no
        larger, so chunk sizes keep decreasing and a ledger of n rows has O(log n) files."""
        from .columnar import concat_blocks, write_chunk

        parts, size, after, merged = [tail], len(tail), covered, []
        while chunks and chunks[-1].rows <= size:
            chunk = chunks.pop()
            parts.insert(0, self._chunk_block(chunk, COLUMNS))
            size, after = size + chunk.rows, chunk.after_id
            merged.append(chunk.file)
        block = concat_blocks(parts)
        last = int(block.ids[-1])
        name = f"{after + 1:012d}-{last:012d}-{uuid.uuid4().hex[:8]}.cols"
        self.columns_dir.mkdir(parents=True, exist_ok=True)
        write_chunk(self.columns_dir / name, block)
        self._conn.executemany("DELETE FROM column_chunks WHERE file = ?",
                               [(file,) for file in merged])
        self._conn.execute("INSERT INTO column_chunks (file, after_id, last_id, rows) "
                           "VALUES (?, ?, ?, ?)", (name, after, last, len(block)))


@dataclass(frozen=True)
class _Chunk:
    file: str
    after_id: int  # the chunk holds every row with after_id < id <= last_id
    last_id: int
    rows: int


def _select(block: Block, names: Sequence[str]) -> Block:
    from .columnar import Block

    return Block(block.ids, {name: block.columns[name] for name in names})


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
