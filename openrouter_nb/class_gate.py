"""Shared pacing, fair shares and per-person budgets for a class on one key, in PostgreSQL.

Every kernel of the class asks the database for a slot before sending to a free model. A
slot is granted inside one short transaction under a per-key advisory lock: the key's sends
in the last ``window_s`` (``pace_sends``) are counted against its per-minute limit and today's
against its daily one, and free slots go to waiting requests (``pace_queue``) round-robin by
person: the person served longest ago first, so a runaway loop in one notebook gets one slot
per round like everybody else. The instructor's budget for each person (``class_budgets``)
is checked in the same transaction, before anything is sent.

Waiting costs no polling storm: a waiter sleeps until the moment its place in the queue should
come (the window's oldest stamps say when), or until a ``NOTIFY`` names it; rows of waiters
whose connection died (a killed kernel, a restarted server) are dropped at the next grant.
Stamps come from the database's clock, so kernels on different machines agree.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .api.errors import ClassBudgetExceeded, DailyRateLimit, LedgerUnavailable
from .identity import EVERYONE

if TYPE_CHECKING:  # pragma: no cover
    import psycopg

    from .pg_db import Database

__all__ = ["ClassGate", "Grant", "PoolState", "Waiting"]

CHANNEL = "orn_pace"
#: A waiter that is not next re-checks its place at least this often (seconds).
RECHECK_S = 3.0
#: A waiting cell's countdown is told where it stands about this often (no query).
TICK_S = 1.0
#: Fair shares are counted over this many windows: who had the fewest slots lately goes first.
FAIR_WINDOWS = 10
_NOW = "SELECT EXTRACT(EPOCH FROM clock_timestamp())::float8"


@dataclass(frozen=True)
class Grant:
    """A slot the class database granted (``send_id`` None: unpaced, a paid model)."""

    send_id: int | None
    stamp: float
    waited: float


@dataclass(frozen=True)
class Waiting:
    """Where a waiting request stands: its place in the class's queue and the expected wait."""

    place: int
    waiting: int
    expected_s: float


@dataclass(frozen=True)
class PoolState:
    """The key's use as the class database counts it."""

    minute_used: int
    day_used: int
    waiting: int
    oldest: float | None  # the stamp of the window's oldest send
    now: float


@dataclass(frozen=True)
class _Limits:
    rpm: int
    window_s: float
    rpd: int | None

    @property
    def margin_s(self) -> float:
        return self.window_s / 200.0


@dataclass
class _Outcome:
    granted: Grant | None = None
    refused: tuple[str, str] | None = None  # (kind, message)
    gone: bool = False  # the row is no longer queued (dropped as stale): queue again
    place: int = 0
    waiting: int = 0
    wake_at: float = 0.0  # database time to look again
    expected_at: float = 0.0
    now: float = 0.0


def _midnight(now: float) -> float:
    return math.floor(now / 86400.0) * 86400.0


class ClassGate:
    """The pacer of one key (``pool``, the account fingerprint) for one ``person``."""

    def __init__(self, db: Database, *, pool: str, person: str) -> None:
        self.db = db
        self.pool = pool
        self.person = person
        self._local = threading.Lock()  # one waiter per kernel in the shared queue
        self._waiter: psycopg.Connection[Any] | None = None

    # -- acquiring ---------------------------------------------------------------------------
    def acquire(self, *, free: bool, rpm: int, window_s: float, rpd: int | None,
                on_wait: Callable[[Waiting], None] | None = None) -> Grant:
        """A slot to send now, waiting in the class's queue for a free model.

        Raises ``ClassBudgetExceeded`` (the instructor's limit), ``DailyRateLimit`` (the key's
        day is spent) or ``LedgerUnavailable`` (no database within its wait) before sending.
        """
        limits = _Limits(rpm, window_s, rpd)
        started = time.monotonic()
        if not free:
            return self.db.run(lambda conn: self._unpaced(conn, started))
        with self._local:
            deadline = started + self.db.wait_s
            pause = 0.05
            while True:
                try:
                    return self._wait_in_line(self._connection(), limits, started, on_wait)
                except Exception as exc:  # connection lost (a restart): queue again, bounded
                    if not _is_connection_trouble(exc):
                        raise
                    self._drop_connection()
                    if time.monotonic() + pause > deadline:
                        raise self.db.unavailable(exc, time.monotonic() - started) from None
                    time.sleep(pause)
                    pause = min(pause * 2, 0.5)

    def _connection(self) -> psycopg.Connection[Any]:
        """This kernel's own connection for waiting in line (LISTEN needs one session); made
        again at once after a restart, without the pool's back-off."""
        if self._waiter is None or self._waiter.closed:
            self._waiter = self.db.connect()
            self._waiter.execute(f"LISTEN {CHANNEL}")  # for as long as it lives
        return self._waiter

    def _drop_connection(self) -> None:
        if self._waiter is not None:
            try:
                self._waiter.close()
            except Exception:
                pass
            self._waiter = None

    def close(self) -> None:
        with self._local:
            self._drop_connection()

    def _unpaced(self, conn: psycopg.Connection[Any], started: float) -> Grant:
        """A paid model: no rate to keep, but the person's budget still applies."""
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", ("orn-person:" + self.person,))
            now = _scalar(conn, _NOW)
            refusal = _over_budget(conn, [self.person], now).get(self.person)
            if refusal:
                raise ClassBudgetExceeded(refusal)
            send_id = _scalar(conn, "INSERT INTO pace_sends (pool, person, stamp, paced) VALUES "
                                    "(%s, %s, %s, false) RETURNING id", (self.pool, self.person, now))
        return Grant(int(send_id), now, time.monotonic() - started)

    def _wait_in_line(self, conn: psycopg.Connection[Any], limits: _Limits, started: float,
                      on_wait: Callable[[Waiting], None] | None) -> Grant:
        queue_id = self._enqueue(conn)
        done = False
        try:
            while True:
                outcome = self._grant(conn, limits, queue_id)
                if outcome.granted is not None:
                    done = True
                    return Grant(outcome.granted.send_id, outcome.granted.stamp,
                                 time.monotonic() - started)
                if outcome.refused is not None:
                    done = True
                    kind, message = outcome.refused
                    raise (ClassBudgetExceeded(message) if kind == "budget"
                           else DailyRateLimit(message))
                if outcome.gone:
                    queue_id = self._enqueue(conn)
                    continue
                _sleep_until_named(conn, queue_id, outcome.wake_at - outcome.now,
                                   _ticker(outcome, on_wait))
        finally:
            if not done:
                _forget(conn, queue_id)

    def _enqueue(self, conn: psycopg.Connection[Any]) -> int:
        return int(_scalar(
            conn, "INSERT INTO pace_queue (pool, person, since, pid, backend_start) SELECT %s, %s, "
                  "EXTRACT(EPOCH FROM clock_timestamp()), pg_backend_pid(), backend_start FROM "
                  "pg_stat_activity WHERE pid = pg_backend_pid() RETURNING id",
            (self.pool, self.person)))

    def _grant(self, conn: psycopg.Connection[Any], limits: _Limits, queue_id: int) -> _Outcome:
        """One scheduling round for the key (any waiter may run it): grant what is free, to
        whom it is due; then where ``queue_id`` stands."""
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", ("orn-pace:" + self.pool,))
            now = _scalar(conn, _NOW)
            mine = conn.execute("SELECT granted, send_id, refused_kind, refused FROM pace_queue "
                                "WHERE id = %s", (queue_id,)).fetchone()
            if mine is None:
                return _Outcome(gone=True, now=now)
            if mine[0] is not None or mine[2] is not None:
                conn.execute("DELETE FROM pace_queue WHERE id = %s", (queue_id,))
                if mine[2] is not None:
                    return _Outcome(refused=(mine[2], mine[3]), now=now)
                return _Outcome(granted=Grant(int(mine[1]), float(mine[0]), 0.0), now=now)
            _drop_stale(conn, self.pool)
            schedule = _Schedule.read(conn, self.pool, limits, now)
            notice = schedule.hand_out(conn)
            outcome = schedule.standing(queue_id)
            if notice:
                conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, json.dumps(notice)))
        if outcome.granted is not None or outcome.refused is not None:
            return self._grant(conn, limits, queue_id)  # just granted (or refused) to us
        return outcome

    # -- after the response -------------------------------------------------------------------
    def settle(self, grant: Grant) -> None:
        """Re-stamp a used slot with the time its response came (never earlier than sent):
        the service counted it somewhere in between. Best effort (a short wait)."""
        if grant.send_id is None:
            return
        try:
            self.db.run(lambda conn: conn.execute(
                "UPDATE pace_sends SET stamp = GREATEST(stamp, EXTRACT(EPOCH FROM "
                "clock_timestamp())) WHERE id = %s", (grant.send_id,)), wait_s=2.0)
        except LedgerUnavailable:
            pass  # the grant's own stamp stands

    def block(self, *, minute_until: float | None = None, day_until: float | None = None) -> None:
        """A 429 said the key is spent until then (local epochs): hold the whole class."""
        try:
            self.db.run(lambda conn: conn.execute(
                "INSERT INTO pace_pools (pool, minute_blocked_until, day_blocked_until) VALUES "
                "(%s, %s, %s) ON CONFLICT (pool) DO UPDATE SET minute_blocked_until = GREATEST("
                "pace_pools.minute_blocked_until, EXCLUDED.minute_blocked_until), "
                "day_blocked_until = GREATEST(pace_pools.day_blocked_until, "
                "EXCLUDED.day_blocked_until)", (self.pool, minute_until or 0.0, day_until or 0.0)),
                wait_s=2.0)
        except LedgerUnavailable:
            pass

    def state(self, window_s: float) -> PoolState:
        """The key's minute and day as the class database counts them."""
        def read(conn: psycopg.Connection[Any]) -> PoolState:
            now = _scalar(conn, _NOW)
            row = conn.execute(
                "SELECT COUNT(*) FILTER (WHERE stamp > %s), COUNT(*), MIN(stamp) FILTER (WHERE "
                "stamp > %s) FROM pace_sends WHERE pool = %s AND paced AND stamp >= %s",
                (now - window_s, now - window_s, self.pool, min(_midnight(now), now - window_s))
            ).fetchone()
            waiting = _scalar(conn, "SELECT COUNT(*) FROM pace_queue WHERE pool = %s AND granted "
                                    "IS NULL AND refused IS NULL", (self.pool,))
            day = _scalar(conn, "SELECT COUNT(*) FROM pace_sends WHERE pool = %s AND paced AND "
                                "stamp >= %s", (self.pool, _midnight(now)))
            assert row is not None
            return PoolState(int(row[0]), int(day), int(waiting), row[2], now)

        return self.db.run(read, wait_s=0.5)


class _Schedule:
    """One round of the scheduler, inside the key's advisory lock."""

    def __init__(self, pool: str, limits: _Limits, now: float, stamps: list[float], day: int,
                 waiters: list[tuple[int, str]], last: dict[str, float],
                 served: dict[str, int], refusals: dict[str, str],
                 blocked: tuple[float, float]) -> None:
        self.pool, self.limits, self.now = pool, limits, now
        self.stamps, self.day, self.waiters, self.last = stamps, day, waiters, last
        self.served = served
        self.refusals, self.blocked = refusals, blocked
        self.granted: dict[int, int] = {}
        self.refused: dict[int, tuple[str, str]] = {}

    @classmethod
    def read(cls, conn: psycopg.Connection[Any], pool: str, limits: _Limits, now: float
             ) -> _Schedule:
        stamps = [r[0] for r in conn.execute(
            "SELECT stamp FROM pace_sends WHERE pool = %s AND paced AND stamp > %s ORDER BY "
            "stamp", (pool, now - limits.window_s - limits.margin_s)).fetchall()]
        day = _scalar(conn, "SELECT COUNT(*) FROM pace_sends WHERE pool = %s AND paced AND "
                            "stamp >= %s", (pool, _midnight(now)))
        waiters = [(int(r[0]), r[1]) for r in conn.execute(
            "SELECT id, person FROM pace_queue WHERE pool = %s AND granted IS NULL AND refused "
            "IS NULL ORDER BY id", (pool,)).fetchall()]
        persons = sorted({person for _id, person in waiters})
        last = {r[0]: float(r[1]) for r in conn.execute(
            "SELECT person, last_grant FROM pace_people WHERE pool = %s AND person = ANY(%s)",
            (pool, persons)).fetchall()}
        served = {r[0]: int(r[1]) for r in conn.execute(
            "SELECT person, COUNT(*) FROM pace_sends WHERE pool = %s AND paced AND stamp > %s "
            "AND person = ANY(%s) GROUP BY person",
            (pool, now - FAIR_WINDOWS * limits.window_s, persons)).fetchall()}
        found = conn.execute("SELECT minute_blocked_until, day_blocked_until FROM pace_pools "
                             "WHERE pool = %s", (pool,)).fetchone()
        blocked = (float(found[0]), float(found[1])) if found else (0.0, 0.0)
        return cls(pool, limits, now, stamps, int(day), waiters, last, served,
                   _over_budget(conn, persons, now), blocked)

    def _next_free(self, ahead: int) -> float:
        """When the request ``ahead`` places behind the next one may go (database time)."""
        limits = self.limits
        times = [s + limits.window_s + limits.margin_s for s in self.stamps]
        free_now = max(0, limits.rpm - len(times))
        start = max(self.now, self.blocked[0])
        if ahead < free_now:
            return start
        ahead -= free_now
        rounds, index = divmod(ahead, limits.rpm)
        base = times[index] if index < len(times) else start
        return max(start, base + rounds * limits.window_s)

    def hand_out(self, conn: psycopg.Connection[Any]) -> dict[str, Any]:
        """Grant the free slots round-robin by person; refuse who is over budget or past the
        key's day. Returns the ``NOTIFY`` payload (empty: nothing changed)."""
        limits, now = self.limits, self.now
        for queue_id, person in self.waiters:
            if person in self.refusals:
                self.refused[queue_id] = ("budget", self.refusals[person])
            elif limits.rpd is not None and self.day >= limits.rpd or self.blocked[1] > now:
                self.refused[queue_id] = ("day", _day_message(limits.rpd, self.day, now,
                                                              self.blocked[1]))
        pending = [w for w in self.waiters if w[0] not in self.refused]
        free = 0 if self.blocked[0] > now else max(0, limits.rpm - len(
            [s for s in self.stamps if s + limits.window_s + limits.margin_s > now]))
        if limits.rpd is not None:
            free = min(free, max(0, limits.rpd - self.day))
        while free and pending:
            pending.sort(key=self._due)
            queue_id, person = pending.pop(0)
            send_id = _scalar(conn, "INSERT INTO pace_sends (pool, person, stamp, paced) VALUES "
                                    "(%s, %s, %s, true) RETURNING id", (self.pool, person, now))
            self.granted[queue_id] = int(send_id)
            self.last[person] = now + len(self.granted) * 1e-6
            self.served[person] = self.served.get(person, 0) + 1
            self.stamps.append(now)
            free -= 1
        for queue_id, send_id in self.granted.items():
            conn.execute("UPDATE pace_queue SET granted = %s, send_id = %s WHERE id = %s",
                         (now, send_id, queue_id))
        for queue_id, (kind, message) in self.refused.items():
            conn.execute("UPDATE pace_queue SET refused_kind = %s, refused = %s WHERE id = %s",
                         (kind, message, queue_id))
        for person in {p for q, p in self.waiters if q in self.granted}:
            conn.execute("INSERT INTO pace_people (pool, person, last_grant) VALUES (%s, %s, %s) "
                         "ON CONFLICT (pool, person) DO UPDATE SET last_grant = EXCLUDED."
                         "last_grant", (self.pool, person, self.last[person]))
        self.order = sorted(pending, key=self._due)
        if not self.granted and not self.refused:
            return {}
        return {"pool": self.pool, "named": [*self.granted, *self.refused,
                                             *(q for q, _p in self.order[:3])]}

    def _due(self, waiter: tuple[int, str]) -> tuple[int, float, int]:
        """Who is served first: the person with the fewest slots lately, then the one served
        longest ago, then the oldest request."""
        queue_id, person = waiter
        return self.served.get(person, 0), self.last.get(person, -math.inf), queue_id

    def standing(self, queue_id: int) -> _Outcome:
        if queue_id in self.granted or queue_id in self.refused:
            return _Outcome(granted=Grant(self.granted.get(queue_id), self.now, 0.0)
                            if queue_id in self.granted else None,
                            refused=self.refused.get(queue_id), now=self.now)
        ids = [q for q, _p in self.order]
        if queue_id not in ids:
            return _Outcome(gone=True, now=self.now)
        place = ids.index(queue_id)
        expected = self._next_free(place)
        wake = expected if place == 0 else min(expected, self.now + RECHECK_S)
        return _Outcome(place=place + 1, waiting=len(ids), wake_at=wake, expected_at=expected,
                        now=self.now)


def _day_message(rpd: int | None, day: int, now: float, blocked_until: float) -> str:
    reset = "00:00 UTC"
    if blocked_until > now:
        reset = time.strftime("%H:%M UTC", time.gmtime(blocked_until))
    spent = f"all {rpd}" if rpd is not None else f"{day}"
    return (f"The class's daily free-model quota on this key is spent ({spent} requests today, "
            f"counted by the class database); nothing was sent. It resets at {reset}.")


def _over_budget(conn: psycopg.Connection[Any], persons: list[str], now: float
                 ) -> dict[str, str]:
    """The persons (of ``persons``) over their instructor's budget today, with the message."""
    if not persons:
        return {}
    budgets = {r[0]: (r[1], r[2]) for r in conn.execute(
        "SELECT person, requests_per_day, dollars_per_day FROM class_budgets WHERE person = "
        "ANY(%s)", ([*persons, EVERYONE],)).fetchall()}
    if not budgets:
        return {}
    midnight = _midnight(now)
    used = {r[0]: int(r[1]) for r in conn.execute(
        "SELECT person, COUNT(*) FROM pace_sends WHERE person = ANY(%s) AND stamp >= %s GROUP BY "
        "person", (persons, midnight)).fetchall()}
    spent = {r[0]: float(r[1] or 0) for r in conn.execute(
        "SELECT person, SUM(cost) FROM attempts WHERE person = ANY(%s) AND epoch >= %s GROUP BY "
        "person", (persons, midnight)).fetchall()}
    refusals = {}
    for person in persons:
        requests, dollars = budgets.get(person) or budgets.get(EVERYONE) or (None, None)
        whose = "for you" if person in budgets else "for everyone in the class"
        if requests is not None and used.get(person, 0) >= requests:
            refusals[person] = (
                f"The instructor's limit {whose} is {requests} requests a day, and you have "
                f"used {used.get(person, 0)}; nothing was sent. It resets at 00:00 UTC; ask the "
                "instructor if you need more.")
        elif dollars is not None and spent.get(person, 0.0) >= dollars:
            refusals[person] = (
                f"The instructor's limit {whose} is ${dollars:.2f} a day, and you have spent "
                f"${spent.get(person, 0.0):.4f}; nothing was sent. It resets at 00:00 UTC; ask "
                "the instructor if you need more.")
    return refusals


def _drop_stale(conn: psycopg.Connection[Any], pool: str) -> None:
    """Forget waiters whose connection is gone (a killed kernel, a restarted server)."""
    conn.execute(
        "DELETE FROM pace_queue q WHERE pool = %s AND granted IS NULL AND refused IS NULL AND "
        "NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = q.pid AND "
        "a.backend_start IS NOT DISTINCT FROM q.backend_start)", (pool,))
    conn.execute("DELETE FROM pace_queue WHERE pool = %s AND (granted IS NOT NULL OR refused IS "
                 "NOT NULL) AND since < EXTRACT(EPOCH FROM clock_timestamp()) - 3600", (pool,))


def _ticker(outcome: _Outcome, on_wait: Callable[[Waiting], None] | None
            ) -> Callable[[], None] | None:
    """Tells ``on_wait`` where the request stands now and then once a second while it
    sleeps (the countdown in the cell), from what the last round said: no query."""
    if on_wait is None:
        return None
    expected = time.monotonic() + max(0.0, outcome.expected_at - outcome.now)

    def tick() -> None:
        on_wait(Waiting(outcome.place, outcome.waiting, max(0.0, expected - time.monotonic())))

    return tick


def _sleep_until_named(conn: psycopg.Connection[Any], queue_id: int, seconds: float,
                       tick: Callable[[], None] | None = None) -> None:
    """Sleep ``seconds`` (at least a few ms) or until a ``NOTIFY`` names ``queue_id``;
    ``tick()`` now and about once a second meanwhile."""
    deadline = time.monotonic() + max(0.005, seconds)
    while (left := deadline - time.monotonic()) > 0:
        if tick is not None:
            tick()
            left = min(left, TICK_S)
        for note in conn.notifies(timeout=left, stop_after=1):
            try:
                named = json.loads(note.payload).get("named", [])
            except (ValueError, AttributeError):
                continue
            if queue_id in named:
                return


def _forget(conn: psycopg.Connection[Any], queue_id: int) -> None:
    try:
        conn.execute("DELETE FROM pace_queue WHERE id = %s AND granted IS NULL", (queue_id,))
    except Exception:  # the connection is gone: the row is dropped as stale
        pass


def _scalar(conn: psycopg.Connection[Any], sql: str, params: tuple[Any, ...] = ()) -> Any:
    row = conn.execute(sql, params).fetchone()
    return row[0] if row else None


def _is_connection_trouble(exc: BaseException) -> bool:
    try:
        import psycopg
        from psycopg_pool import PoolTimeout
    except ImportError:  # pragma: no cover
        return False
    return isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout))
