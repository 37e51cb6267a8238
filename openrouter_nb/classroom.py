"""A class on one key: where a session's rows go, who it records as, and the instructor's tools.

With ``OPENROUTER_NB_LEDGER=postgresql://...`` (or ``Session(ledger_url=...)``) every kernel of
the class writes to one PostgreSQL ledger as its participant (``JUPYTERHUB_USER``, or
``OPENROUTER_NB_PERSON``, or ``Session(person=...)``), and requests to the shared key are paced
for the whole class by the database (:mod:`openrouter_nb.class_gate`). Instructors (named in
``OPENROUTER_NB_INSTRUCTORS``) see every participant (:func:`class_frame`) and set budgets
(:func:`set_budget`). Without a database URL nothing changes: the SQLite ledger in the home
folder, pacing in this process.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import identity, store
from .config import Settings
from .options import SessionConfig
from .pg_db import DEFAULT_WAIT_S

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from .class_gate import ClassGate
    from .ledger_pg import PostgresLedger

__all__ = ["ClassLink", "budgets_frame", "class_frame", "open_storage", "set_budget"]

_TRUE = {"1", "true", "yes", "on", "local"}


@dataclass(frozen=True)
class ClassLink:
    """A session's storage: its ledger, and in a class its person, role and shared pacer."""

    ledger: store.AttemptStore
    person: str | None = None
    instructor: bool = False
    gate: ClassGate | None = None
    fallback: bool = False  # may pace alone (and spool rows) while the database is down

    @property
    def database(self) -> PostgresLedger | None:
        """The class's ledger (None: a ledger of one's own, SQLite)."""
        from .ledger_pg import PostgresLedger

        return self.ledger if isinstance(self.ledger, PostgresLedger) else None


def _wait_s(env: Mapping[str, str]) -> float:
    value = env.get("OPENROUTER_NB_DB_WAIT_S", "").strip()
    try:
        return max(0.5, float(value)) if value else DEFAULT_WAIT_S
    except ValueError:
        raise ValueError(f"OPENROUTER_NB_DB_WAIT_S must be a number of seconds, not "
                         f"{value!r}.") from None


def open_storage(cfg: SessionConfig, settings: Settings, given: store.AttemptStore | None, *,
                 in_process_sandbox: bool, env: Mapping[str, str] | None = None) -> ClassLink:
    """The ledger a session writes to; in a class, also its person and the shared pacer (not
    for the in-process sandbox, whose quota is this kernel's own)."""
    from .ledger_pg import PostgresLedger

    env = os.environ if env is None else env
    if isinstance(given, PostgresLedger) and given.person is not None:  # a derived session
        return _in_class(given, given.person, given.everyone, cfg, settings, env,
                         in_process_sandbox)
    person = identity.person_name(cfg.person, env)
    url = store.ledger_target(cfg.ledger_url, env)
    if given is not None:
        return ClassLink(given, person=person)
    if url is None:
        return ClassLink(store.file_ledger(settings.home / "ledger.sqlite"), person=person)
    if person is None:
        raise ValueError("A class ledger (OPENROUTER_NB_LEDGER) records who asked: set "
                         "JUPYTERHUB_USER (JupyterHub does) or OPENROUTER_NB_PERSON, or pass "
                         "Session(person='your name').")
    instructor = identity.is_instructor(person, env)
    ledger = store.class_ledger(url, home=settings.home, person=person, everyone=instructor,
                                wait_s=_wait_s(env))
    return _in_class(ledger, person, instructor, cfg, settings, env, in_process_sandbox)


def _in_class(ledger: PostgresLedger, person: str, instructor: bool, cfg: SessionConfig,
              settings: Settings, env: Mapping[str, str], in_process_sandbox: bool) -> ClassLink:
    fallback = (cfg.ledger_fallback if cfg.ledger_fallback is not None
                else env.get("OPENROUTER_NB_LEDGER_FALLBACK", "").strip().lower() in _TRUE)
    gate = None if in_process_sandbox else _gate(ledger, settings.account, person)
    return ClassLink(ledger, person, instructor, gate, fallback)


_gates: dict[tuple[int, str, str], ClassGate] = {}
_gates_lock = threading.Lock()


def _gate(ledger: PostgresLedger, pool: str, person: str) -> ClassGate:
    """One pacer per database, key and person per process: a kernel waits in the class's
    queue on one connection, whatever sessions it makes."""
    from .class_gate import ClassGate

    with _gates_lock:
        key = (id(ledger.db), pool, person)
        if key not in _gates:
            if not _gates:
                atexit.register(_close_gates)
            _gates[key] = ClassGate(ledger.db, pool=pool, person=person)
        return _gates[key]


def _close_gates() -> None:
    with _gates_lock:
        for gate in _gates.values():
            gate.close()
        _gates.clear()


def _database(link: ClassLink, *, instructor_only: str | None = None) -> PostgresLedger:
    if link.database is None:
        raise RuntimeError("There is no class here: set OPENROUTER_NB_LEDGER to the class's "
                           "postgresql:// URL (see the README's JupyterHub recipe).")
    if instructor_only and not link.instructor:
        raise PermissionError(f"{instructor_only} is for the class's instructors: "
                              f"{link.person!r} is not in OPENROUTER_NB_INSTRUCTORS.")
    return link.database


def set_budget(link: ClassLink, *, requests_per_day: int | None = None,
               dollars_per_day: float | None = None, person: str = identity.EVERYONE) -> None:
    """Set (or, with neither limit, remove) a participant's daily budget; ``person="*"``
    sets the one for everyone without a budget of their own. Instructors only."""
    database = _database(link, instructor_only="Setting budgets")
    if person != identity.EVERYONE:
        person = identity.valid_person(person)
    for name, value in (("requests_per_day", requests_per_day),
                        ("dollars_per_day", dollars_per_day)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or value < 0 or (name == "requests_per_day"
                                                   and not float(value).is_integer())):
            raise ValueError(f"{name} must be a whole number of requests (or dollars) of 0 or "
                             f"more, or None for no limit; got {value!r}.")

    def write(conn: Any) -> None:
        if requests_per_day is None and dollars_per_day is None:
            conn.execute("DELETE FROM class_budgets WHERE person = %s", (person,))
            return
        conn.execute(
            "INSERT INTO class_budgets (person, requests_per_day, dollars_per_day, set_by, "
            "set_at) VALUES (%s, %s, %s, %s, %s) ON CONFLICT (person) DO UPDATE SET "
            "requests_per_day = EXCLUDED.requests_per_day, dollars_per_day = "
            "EXCLUDED.dollars_per_day, set_by = EXCLUDED.set_by, set_at = EXCLUDED.set_at",
            (person, None if requests_per_day is None else int(requests_per_day),
             dollars_per_day, link.person, time.time()))

    database.db.run(write)


def budgets_frame(link: ClassLink) -> pd.DataFrame:
    """The budgets set for the class (``*``: everyone without one of their own)."""
    import pandas as pd

    database = _database(link)
    rows = database.db.run(lambda conn: conn.execute(
        "SELECT person, requests_per_day, dollars_per_day, set_by FROM class_budgets "
        "ORDER BY person").fetchall())
    return pd.DataFrame(rows, columns=["person", "requests_per_day", "dollars_per_day",
                                       "set_by"])


_PER_PERSON = """
SELECT person,
  COUNT(*) FILTER (WHERE http_status IS NOT NULL OR status = 'ok') AS requests_today,
  COUNT(*) FILTER (WHERE status = 'ok') AS answered,
  COUNT(*) FILTER (WHERE status = 'error') AS failed,
  SUM(cost) AS cost_today,
  (ARRAY_AGG(COALESCE(served_model, requested_model) ORDER BY id DESC))[1] AS last_model,
  MAX(epoch) AS last_epoch
FROM attempts WHERE epoch >= %s AND person IS NOT NULL GROUP BY person
"""
_FAILURES = """
SELECT person, error_kind, COUNT(*) FROM attempts
WHERE epoch >= %s AND person IS NOT NULL AND status = 'error' AND error_kind IS NOT NULL
GROUP BY person, error_kind ORDER BY person, COUNT(*) DESC
"""


def class_frame(link: ClassLink) -> pd.DataFrame:
    """Per participant, today (UTC): requests sent, answered, failed (by kind), cost, last
    model, waiting or blocked, and their share of the class's requests. Instructors only."""
    import pandas as pd

    database = _database(link, instructor_only="The class view")
    now = time.time()
    midnight = now - now % 86400.0

    def read(conn: Any) -> tuple[list[Any], list[Any], list[Any], list[Any]]:
        people = conn.execute(_PER_PERSON, (midnight,)).fetchall()
        failures = conn.execute(_FAILURES, (midnight,)).fetchall()
        waiting = conn.execute("SELECT person, COUNT(*) FROM pace_queue WHERE granted IS NULL "
                               "AND refused IS NULL GROUP BY person").fetchall()
        budgets = conn.execute("SELECT person, requests_per_day, dollars_per_day FROM "
                               "class_budgets").fetchall()
        return people, failures, waiting, budgets

    people, failures, waiting, budgets = database.db.run(read)
    kinds: dict[str, list[str]] = {}
    for person, kind, count in failures:
        kinds.setdefault(person, []).append(f"{kind} ×{count}")
    queued = {person: int(count) for person, count in waiting}
    limits = {person: (requests, dollars) for person, requests, dollars in budgets}
    total = sum(int(row[1]) for row in people) or 1
    rows = []
    for person, requests, answered, failed, cost, last_model, _last in people:
        requests_limit, dollars_limit = limits.get(person) or limits.get(
            identity.EVERYONE) or (None, None)
        blocked = ((requests_limit is not None and requests >= requests_limit)
                   or (dollars_limit is not None and (cost or 0.0) >= dollars_limit))
        state = "blocked (budget)" if blocked else (
            f"waiting ({queued[person]})" if queued.get(person) else "")
        rows.append(dict(person=person, requests_today=int(requests), answered=int(answered),
                         failed=int(failed), failures=", ".join(kinds.get(person, [])),
                         cost_today=float(cost or 0.0), last_model=last_model, state=state,
                         budget=_budget_text(requests_limit, dollars_limit),
                         share=round(int(requests) / total, 3)))
    columns = ["person", "requests_today", "answered", "failed", "failures", "cost_today",
               "last_model", "state", "budget", "share"]
    return pd.DataFrame(rows, columns=columns).sort_values("person").reset_index(drop=True)


def _budget_text(requests: int | None, dollars: float | None) -> str:
    parts = [f"{requests}/day" if requests is not None else "",
             f"${dollars:.2f}/day" if dollars is not None else ""]
    return " and ".join(part for part in parts if part)
