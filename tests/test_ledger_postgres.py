"""The ledger on PostgreSQL (PostgresLedger) against a real server: its schema, 30 kernels
migrating at once, per-person reads, an outage spooled locally and synced back, passwords
kept out of messages, and DataFrames typed as the SQLite ledger's."""

from __future__ import annotations

import gc
import re
import subprocess
import sys
import threading
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from openrouter_nb import ledger_pg, pg_db
from openrouter_nb.api.errors import LedgerUnavailable
from openrouter_nb.ledger import _TYPES, COLUMNS, Ledger
from openrouter_nb.ledger_pg import MIGRATIONS, PostgresLedger

from .postgres_server import PostgresServer, available

PASSWORD = "s3cretpw"


def _with_password(url: str, *, in_query: bool = False) -> str:
    """``url`` (``postgresql://user@host:port/db``) carrying a password, which the trusting
    test server ignores."""
    if in_query:
        return f"{url}?password={PASSWORD}"
    scheme, rest = url.split("://", 1)
    user, host = rest.split("@", 1)
    return f"{scheme}://{user}:{PASSWORD}@{host}"


@pytest.fixture
def opened() -> Iterator[list[PostgresLedger]]:
    """Ledgers a test opens, closed after it."""
    ledgers: list[PostgresLedger] = []
    yield ledgers
    for ledger in ledgers:
        ledger.close()


def test_attempts_table_has_exactly_the_ledger_columns(postgres_url: str, tmp_path: Path,
                                                       opened: list[PostgresLedger]) -> None:
    opened.append(PostgresLedger(postgres_url, home=tmp_path, wait_s=10))
    with psycopg.connect(postgres_url) as conn:
        found = conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE "
            "table_schema = 'public' AND table_name = 'attempts' ORDER BY ordinal_position"
        ).fetchall()
        uid_unique = conn.execute(
            "SELECT count(*) FROM information_schema.table_constraints tc JOIN "
            "information_schema.constraint_column_usage cu USING (constraint_name) WHERE "
            "tc.table_name = 'attempts' AND tc.constraint_type = 'UNIQUE' AND "
            "cu.column_name = 'row_uid'").fetchone()
    assert [name for name, _ in found] == ["id", "row_uid", *COLUMNS]
    expected = {"INTEGER": "bigint", "REAL": "double precision"}
    assert dict(found) == {"id": "bigint", "row_uid": "text",
                           **{name: expected.get(_TYPES.get(name, "TEXT"), "text")
                              for name in COLUMNS}}
    assert uid_unique == (1,)


_OPEN_AT_ONCE = """
import sys, time
from pathlib import Path
from openrouter_nb.ledger_pg import PostgresLedger
url, go, home, person = sys.argv[1:]
print("ready", flush=True)
while not Path(go).exists():
    time.sleep(0.002)
ledger = PostgresLedger(url, home=Path(home), person=person, wait_s=30)
ledger.record(call_id=person, status="ok")
ledger.close()
"""


def test_thirty_kernels_open_a_new_database_at_once(postgres_url: str, tmp_path: Path) -> None:
    with psycopg.connect(postgres_url) as conn:  # a new, empty database
        assert conn.execute("SELECT to_regclass('orn_schema')").fetchone() == (None,)
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", _OPEN_AT_ONCE, postgres_url, str(go),
                               str(tmp_path / f"home{n}"), f"p{n:02d}"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for n in range(30)]
    try:
        for proc in procs:  # every child has imported everything: they start together
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        go.touch()
        results = [proc.communicate(timeout=60) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    assert [proc.returncode for proc in procs] == [0] * 30, [err for _, err in results]
    assert all(err == "" for _, err in results), [err for _, err in results if err]
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        assert conn.execute("SELECT name, version FROM orn_schema").fetchall() == \
            [("ledger", len(MIGRATIONS))]
        people = conn.execute("SELECT person FROM attempts ORDER BY person").fetchall()
        assert [p for (p,) in people] == [f"p{n:02d}" for n in range(30)]
        # Migrated once: one insert of the version row and one update per later step (the
        # statistics of the children's backends arrive when those backends have exited).
        deadline = time.monotonic() + 10
        while True:
            conn.execute("SELECT pg_stat_clear_snapshot()")
            stats = conn.execute("SELECT n_tup_ins, n_tup_upd FROM pg_stat_user_tables "
                                 "WHERE relname = 'orn_schema'").fetchone()
            if stats == (1, len(MIGRATIONS) - 1) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert stats == (1, len(MIGRATIONS) - 1)
        # and the ledger's table was created once (no leftover duplicate or error)
        assert conn.execute("SELECT count(*) FROM pg_class WHERE relname = 'attempts'"
                            ).fetchone() == (1,)


def test_each_person_reads_their_own_rows(postgres_url: str, tmp_path: Path,
                                          opened: list[PostgresLedger]) -> None:
    def open_as(person: str, everyone: bool = False) -> PostgresLedger:
        ledger = PostgresLedger(postgres_url, home=tmp_path / person, person=person,
                                everyone=everyone, wait_s=10)
        opened.append(ledger)
        return ledger

    ana, ben, teacher = open_as("ana"), open_as("ben"), open_as("teacher", everyone=True)
    common = dict(requested_model="x/y:free", account="k", status="ok")
    ana.record(call_id="a1", epoch=100.0, request_hash="h-ana", conversation="chat",
               conversation_id="cv-ana", turn=1, attempt=1, turn_messages="ana-1", **common)
    ana.record(call_id="a2", epoch=101.0, batch_id="B", row_key="0", response="ana0", **common)
    ben.record(call_id="b1", epoch=102.0, request_hash="h-ben", conversation="chat",
               conversation_id="cv-ben", turn=1, attempt=1, turn_messages="ben-1", **common)
    ben.record(call_id="b2", epoch=103.0, request_hash="h-ana", conversation="solo",
               conversation_id="cv-solo", turn=1, attempt=1, turn_messages="solo-1",
               batch_id="B", row_key="1", response="ben1", **common)

    assert [(r["call_id"], r["person"]) for r in ana.rows()] == [("a1", "ana"), ("a2", "ana")]
    assert [r["call_id"] for r in ben.rows(newest_first=True)] == ["b2", "b1"]
    assert ana.rows(call_id="b1") == [] and ana.rows(batch_id="B")[0]["call_id"] == "a2"
    assert (len(ana), len(ben), len(teacher)) == (2, 2, 4)
    assert ana.dataframe()["call_id"].tolist() == ["a1", "a2"]
    assert ana.dataframe(columns=["person"])["person"].tolist() == ["ana", "ana"]
    assert teacher.dataframe()["call_id"].tolist() == ["a1", "a2", "b1", "b2"]
    assert [r["person"] for r in teacher.rows()] == ["ana", "ana", "ben", "ben"]

    # Quota counts are the key's: everyone's attempts, whoever asks.
    for ledger in (ana, ben, teacher):
        assert ledger.count_attempts(since=0, account="k") == 4
        assert ledger.attempt_times(since=100.5, account="k") == [101.0, 102.0, 103.0]

    # The cache, conversations and batches are one's own (even an instructor's).
    hit = ana.cached_answer("h-ana")
    assert hit is not None and hit["call_id"] == "a1"  # not ben's newer row with that hash
    assert ana.cached_answer("h-ben") is None and teacher.cached_answer("h-ben") is None
    found = ben.cached_answer("h-ben")
    assert found is not None and found["person"] == "ben"
    assert ana.conversation_turns("chat") == ("cv-ana", "x/y:free", ["ana-1"])
    assert ben.conversation_turns("chat") == ("cv-ben", "x/y:free", ["ben-1"])
    assert ana.conversation_turns("solo") is None and teacher.conversation_turns("solo") is None
    assert ben.conversation_turns("solo") == ("cv-solo", "x/y:free", ["solo-1"])
    assert sorted(ana.batch_answers("B")) == ["0"] and sorted(ben.batch_answers("B")) == ["1"]


def _stop(server: PostgresServer) -> None:
    server._check("pg_ctl stop", server._run([
        server._tool("pg_ctl"), "stop", "-D", str(server.data_dir), "-m", "fast", "-w",
        "-t", "60"]))


def _start(server: PostgresServer) -> None:
    server._check("pg_ctl start", server._run([
        server._tool("pg_ctl"), "start", "-D", str(server.data_dir), "-l",
        str(server.log_path), "-w", "-t", "60"]))
    server._wait_ready()


@pytest.fixture
def own_server(postgres: PostgresServer) -> Iterator[PostgresServer]:
    """A server of the test's own, to stop and start (``postgres``: skip without PostgreSQL)."""
    assert available() is None
    with PostgresServer() as server:
        yield server


def test_outage_rows_are_spooled_then_synced_once(own_server: PostgresServer, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ledger_pg, "RECORD_WAIT_S", 1.0)  # spool after 1 s, not 3
    url = _with_password(own_server.url)
    ledger = PostgresLedger(url, home=tmp_path, person="ana", wait_s=10)
    try:
        assert ledger.record(call_id="before", status="ok") > 0
        _stop(own_server)
        started = time.monotonic()
        with pytest.warns(RuntimeWarning) as caught:
            assert ledger.record(call_id="during", status="ok", response="kept") == 0
        assert time.monotonic() - started < 8
        messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
        assert len(messages) == 1 and str(ledger.spool.path) in messages[0]
        assert PASSWORD not in messages[0] and "synced back" in messages[0]
        assert len(ledger.spool) == 1
        with warnings.catch_warnings():  # warned once: a second spooled row is quiet
            warnings.simplefilter("error")
            assert ledger.record_many([{"call_id": "during2", "status": "ok"}]) == 1
        assert len(ledger.spool) == 2
        assert PASSWORD.encode() not in ledger.spool.path.read_bytes()

        _start(own_server)
        assert ledger.record(call_id="after", status="ok") > 0
        assert len(ledger.spool) == 0
        assert ledger.sync() == 0 and ledger.sync() == 0
        calls = Counter(r["call_id"] for r in ledger.rows())
        assert calls == {"before": 1, "during": 1, "during2": 1, "after": 1}
        during = ledger.rows()[[r["call_id"] for r in ledger.rows()].index("during")]
        assert during["response"] == "kept" and during["person"] == "ana"

        # A sync interrupted after the database stored a batch sends it again: no duplicate.
        with psycopg.connect(own_server.url) as conn:
            uid = conn.execute("SELECT row_uid FROM attempts WHERE call_id = 'during'"
                               ).fetchone()
        assert uid is not None
        ledger.spool.add(uid[0], ledger._values({"call_id": "during", "status": "ok"}))
        assert ledger.sync() == 1 and len(ledger.spool) == 0
        assert len(ledger) == 4
        assert Counter(r["call_id"] for r in ledger.rows())["during"] == 1
    finally:
        ledger.close()


@pytest.mark.parametrize("in_query", [False, True], ids=["userinfo", "query"])
def test_password_never_shown(postgres_url: str, tmp_path: Path, in_query: bool,
                              opened: list[PostgresLedger]) -> None:
    ledger = PostgresLedger(_with_password(postgres_url, in_query=in_query), home=tmp_path,
                            wait_s=10)
    opened.append(ledger)
    ledger.record(call_id="x", status="ok")
    assert len(ledger) == 1
    database = postgres_url.rsplit("/", 1)[1]
    for shown in (repr(ledger), ledger.where, ledger.spool.target):
        assert PASSWORD not in shown and database in shown
    assert "***" in ledger.where


@pytest.mark.parametrize("in_query", [False, True], ids=["userinfo", "query"])
def test_unreachable_database_says_what_to_do_without_the_password(
        tmp_path: Path, in_query: bool) -> None:
    url = _with_password("postgresql://u@127.0.0.1:1/db", in_query=in_query)
    database = pg_db.Database(url, wait_s=1)  # ours to close (see the test below)
    started = time.monotonic()
    try:
        with pytest.raises(LedgerUnavailable) as caught:
            PostgresLedger(url, home=tmp_path, wait_s=1, database=database)
    finally:
        database.close()
    assert time.monotonic() - started < 10
    message = str(caught.value)
    assert PASSWORD not in message and PASSWORD not in repr(caught.value)
    assert "127.0.0.1:1/db" in message
    assert re.search(r"could not be reached for \d+ s", message)
    assert "Try again" in message and "OPENROUTER_NB_LEDGER_FALLBACK=local" in message


def _pool_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("openrouter-nb") and t.is_alive()}


def test_unreachable_database_leaves_no_pool_running(tmp_path: Path) -> None:
    url = "postgresql://u@127.0.0.1:1/db"
    before = _pool_threads()
    try:
        with pytest.raises(LedgerUnavailable):
            PostgresLedger(url, home=tmp_path, wait_s=0.5)
        deadline = time.monotonic() + 3
        while _pool_threads() - before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _pool_threads() - before == set()
    finally:  # close the pool the ledger left open, so the bug leaks nothing into later tests
        from psycopg_pool import ConnectionPool

        for found in gc.get_objects():
            if isinstance(found, ConnectionPool) and found.conninfo == url and not found.closed:
                found.close(timeout=1.0)


_ROWS: list[dict[str, Any]] = [
    dict(call_id="a", attempt=1, requested_model="x/y:free", served_model="x/y:free",
         provider="P", status="ok", http_status=200, latency_s=0.5, ttft_s=0.1,
         prompt_tokens=3, completion_tokens=4, cost=0.0, validated=True, sandbox=True,
         stream=False, prompt="hi", response="yo", epoch=1_788_800_000.25, turn=1,
         reasoning_tokens=7, step=2, wait_s=0.0, person="ana"),
    dict(call_id="b", attempt=2, status="error", error_kind="rate_limit_minute",
         http_status=429, error_message="slow down", epoch=1_788_800_001.5),
    dict(call_id="c", status="error", error_kind="budget"),  # mostly NULL
]


def test_dataframe_dtypes_match_sqlite(postgres_url: str, tmp_path: Path,
                                       opened: list[PostgresLedger]) -> None:
    sqlite = Ledger(tmp_path / "l.sqlite")
    pg = PostgresLedger(postgres_url, home=tmp_path, wait_s=10)
    opened.append(pg)
    try:
        for row in _ROWS:
            sqlite.record(**row)
            pg.record(**row)
        for columns in ("all", None):
            lite = sqlite.dataframe(columns=columns)
            frame = pg.dataframe(columns=columns)
            assert list(frame.columns) == list(lite.columns)
            assert dict(frame.dtypes) == dict(lite.dtypes)
            assert len(frame) == len(_ROWS)
            # the third row got its epoch from the clock: equal only in what was given
            assert frame.iloc[:2].astype(object).where(frame.iloc[:2].notna(), None
                                                       ).values.tolist() == \
                lite.iloc[:2].astype(object).where(lite.iloc[:2].notna(), None).values.tolist()
        empty = PostgresLedger(postgres_url, home=tmp_path / "e", wait_s=10,
                               person="nobody")  # reads none of the rows
        opened.append(empty)
        assert len(empty.dataframe(columns="all")) == 0
        assert dict(empty.dataframe(columns="all").dtypes) == \
            dict(Ledger(tmp_path / "empty.sqlite").dataframe(columns="all").dtypes)
    finally:
        sqlite.close()


def test_the_whole_class_is_for_instructors(postgres_url: str, tmp_path: Path) -> None:
    ana = PostgresLedger(postgres_url, home=tmp_path, person="ana")
    teacher = PostgresLedger(postgres_url, home=tmp_path, person="teacher", everyone=True)
    try:
        ana.record(call_id="a", status="ok")
        teacher.record(call_id="t", status="ok")
        with pytest.raises(PermissionError, match="instructors"):
            ana.dataframe(everyone=True)
        assert list(ana.dataframe()["call_id"]) == ["a"]
        assert list(teacher.dataframe()["call_id"]) == ["a", "t"]
        assert list(teacher.dataframe(everyone=False)["call_id"]) == ["t"]
    finally:
        ana.close()
        teacher.close()
