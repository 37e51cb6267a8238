"""The class database: a psycopg 3 connection pool, bounded waiting, and versioned migrations.

Used by :mod:`openrouter_nb.ledger_pg` (the ledger's rows) and :mod:`openrouter_nb.class_gate`
(the shared pacer and budgets). Every wait is bounded: a database that is down or restarting
is tried again with growing pauses for ``wait_s`` in all, then :class:`LedgerUnavailable`
names the server (never the password) and what to do. psycopg is imported only here, and
only when a ``postgresql://`` ledger is used.
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from .api.errors import LedgerUnavailable

if TYPE_CHECKING:  # pragma: no cover
    import psycopg
    from psycopg_pool import ConnectionPool

_T = TypeVar("_T")

#: How long a call waits, in all, for an unreachable class database (OPENROUTER_NB_DB_WAIT_S).
DEFAULT_WAIT_S = 30.0
#: How long a step waits for a pooled connection before it opens one of its own.
POOL_WAIT_S = 0.5
#: A lock number all kernels take while migrating (pg_advisory_xact_lock).
_MIGRATION_LOCK = 0x6F726E62  # "ornb"


def is_database_url(target: object) -> bool:
    """Whether ``target`` names a PostgreSQL database rather than a folder."""
    return isinstance(target, str) and target.split(":", 1)[0] in ("postgresql", "postgres")


def safe_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (for messages and reprs)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "postgresql://(unreadable URL)"
    netloc = parts.netloc
    if "@" in netloc:
        user, _, host = netloc.rpartition("@")
        if ":" in user:
            user = user.split(":", 1)[0] + ":***"
        netloc = f"{user}@{host}"
    query = re.sub(r"(?i)(password=)[^&]*", r"\1***", parts.query)
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def scrub(text: str, url: str) -> str:
    """``text`` (an error message) without the password of ``url``."""
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    return text.replace(password, "***") if password else text


def _missing_driver() -> LedgerUnavailable:
    return LedgerUnavailable(
        "A postgresql:// ledger needs psycopg 3 and its pool: pip install "
        "'openrouter-nb[class]' (or psycopg[binary] psycopg-pool), then restart the kernel.")


class Database:
    """A small pool of connections to one PostgreSQL database, waited for boundedly."""

    def __init__(self, url: str, *, wait_s: float = DEFAULT_WAIT_S, max_size: int = 4,
                 name: str = "openrouter-nb") -> None:
        try:
            from psycopg_pool import ConnectionPool
        except ImportError:
            raise _missing_driver() from None
        self.url = url
        self.where = safe_url(url)
        self.wait_s = wait_s
        self._pool: ConnectionPool = ConnectionPool(
            url, min_size=1, max_size=max_size, open=False, name=name,
            kwargs={"autocommit": True, "application_name": name, "connect_timeout": 5},
            # the pool's own reconnection is quiet: a call that cannot wait says why
            check=ConnectionPool.check_connection)
        self._opened = False
        self._open_lock = threading.Lock()
        logging.getLogger("psycopg.pool").addHandler(logging.NullHandler())
        logging.getLogger("psycopg.pool").propagate = False

    def _open(self) -> None:
        with self._open_lock:
            if not self._opened:
                self._pool.open(wait=False)
                self._opened = True

    def close(self) -> None:
        with self._open_lock:
            if self._opened:
                self._pool.close(timeout=1.0)
                self._opened = False

    def unavailable(self, exc: BaseException | None, waited: float) -> LedgerUnavailable:
        reason = scrub(str(exc).strip().splitlines()[0] if exc and str(exc).strip()
                       else type(exc).__name__, self.url)
        return LedgerUnavailable(
            f"The class database {self.where} could not be reached for {waited:.0f} s "
            f"({reason}); nothing was sent. Try again in a minute, or ask the instructor to "
            "check the database (or set OPENROUTER_NB_LEDGER_FALLBACK=local to go on with a "
            "local ledger, synced back later).")

    @contextmanager
    def connection(self, timeout: float | None = None) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection (autocommit), waiting at most ``timeout`` for a free one."""
        self._open()
        with self._pool.connection(timeout=self.wait_s if timeout is None else timeout) as conn:
            yield conn

    def run(self, step: Callable[[psycopg.Connection[Any]], _T], *,
            wait_s: float | None = None) -> _T:
        """``step(conn)``, tried again on connection trouble with growing pauses for
        ``wait_s`` (default: the database's) in all, then :class:`LedgerUnavailable`.

        A pool that is still reconnecting with its own back-off (after a restart) is not
        waited for: the step runs on a connection of its own, so every kernel of a class is
        back as soon as the server is.
        """
        import psycopg

        budget = self.wait_s if wait_s is None else wait_s
        started = time.monotonic()
        pause = 0.05
        while True:
            try:
                return self._step(step, max(0.1, min(POOL_WAIT_S,
                                                     budget - (time.monotonic() - started))))
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                failure: BaseException = exc
            waited = time.monotonic() - started
            if waited + pause > budget:
                raise self.unavailable(failure, waited) from None
            time.sleep(pause * random.uniform(0.5, 1.5))
            pause = min(pause * 2, 0.5)

    def _step(self, step: Callable[[psycopg.Connection[Any]], _T], timeout: float) -> _T:
        from psycopg_pool import PoolTimeout

        try:
            with self.connection(timeout=timeout) as conn:
                return step(conn)
        except PoolTimeout:
            pass
        conn = self.connect()
        try:
            return step(conn)
        finally:
            conn.close()

    def connect(self) -> psycopg.Connection[Any]:
        """A connection of its own (not pooled), autocommit."""
        import psycopg

        return psycopg.connect(self.url, autocommit=True, connect_timeout=5,
                               application_name="openrouter-nb")


def migrate(conn: psycopg.Connection[Any], migrations: tuple[str, ...]) -> None:
    """Bring the schema to ``len(migrations)``, one transaction per step, under an advisory
    lock so that 30 kernels starting at once migrate exactly once."""
    import psycopg

    try:  # already current: nothing to create (a participant's role may not create tables)
        if schema_version(conn) >= len(migrations):
            return
    except psycopg.errors.UndefinedTable:
        pass
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        conn.execute("CREATE TABLE IF NOT EXISTS orn_schema (name TEXT PRIMARY KEY, "
                     "version INTEGER NOT NULL)")
    for number, script in enumerate(migrations, start=1):
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            row = conn.execute("SELECT version FROM orn_schema WHERE name = 'ledger'").fetchone()
            current = row[0] if row else 0
            if current >= number:
                continue
            for statement in filter(str.strip, script.split(";")):
                conn.execute(statement)
            conn.execute("INSERT INTO orn_schema (name, version) VALUES ('ledger', %s) "
                         "ON CONFLICT (name) DO UPDATE SET version = EXCLUDED.version", (number,))


def schema_version(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT version FROM orn_schema WHERE name = 'ledger'").fetchone()
    return int(row[0]) if row else 0
