"""The ledger on both backends (SQLite and PostgreSQL): schema, DataFrame view, threads,
processes. The SQLite file's specifics (WAL mode) are tested on SQLite only."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from openrouter_nb.ledger import CORE_COLUMNS, Ledger

# A child process opens the ledger the test names: a SQLite path or a postgresql:// URL.
_OPEN = (
    "import sys; from pathlib import Path\n"
    "def open_ledger(target, home):\n"
    "    if target.startswith('postgresql://'):\n"
    "        from openrouter_nb.ledger_pg import PostgresLedger\n"
    "        return PostgresLedger(target, home=Path(home), wait_s=30)\n"
    "    from openrouter_nb.ledger import Ledger\n"
    "    return Ledger(target)\n"
)


class LedgerFactory:
    """Opens a ledger on the same store each time it is called (``target``: the SQLite path
    or the PostgreSQL URL; ``home``: the local folder a PostgreSQL ledger spools to)."""

    def __init__(self, backend: str, target: str, home: Path) -> None:
        self.backend = backend
        self.target = target
        self.home = home
        self.opened: list[Any] = []

    def __call__(self) -> Any:
        if self.backend == "sqlite":
            ledger: Any = Ledger(self.target)
        else:
            from openrouter_nb.ledger_pg import PostgresLedger

            ledger = PostgresLedger(self.target, home=self.home, wait_s=30)
        self.opened.append(ledger)
        return ledger

    def run_child(self, code: str, *args: str) -> subprocess.Popen[bytes]:
        """A Python process running ``_OPEN`` then ``code`` with argv[1:] = target, home, args."""
        return subprocess.Popen([sys.executable, "-c", _OPEN + code, self.target,
                                 str(self.home), *args])


@pytest.fixture(params=["sqlite", "postgresql"])
def make_ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LedgerFactory]:
    if request.param == "sqlite":
        factory = LedgerFactory("sqlite", str(tmp_path / "l.sqlite"), tmp_path)
    else:
        factory = LedgerFactory("postgresql", request.getfixturevalue("postgres_url"), tmp_path)
    yield factory
    for ledger in factory.opened:
        ledger.close()


def test_core_columns_are_the_design_contract(make_ledger: LedgerFactory) -> None:
    assert CORE_COLUMNS == (
        "time", "call_id", "attempt", "requested_model", "served_model", "provider",
        "generation_id", "status", "error_kind", "http_status", "latency_s", "ttft_s",
        "prompt_tokens", "completion_tokens", "cost", "validated", "fallback", "sandbox",
        "prompt", "response",
    )
    frame = make_ledger().dataframe()
    assert list(frame.columns[: len(CORE_COLUMNS)]) == list(CORE_COLUMNS)


def test_record_and_read_back(make_ledger: LedgerFactory) -> None:
    ledger = make_ledger()
    ledger.record(call_id="c1", attempt=1, requested_model="openrouter/free",
                  served_model="a/b:free", status="ok", sandbox=True, prompt="hi", response="yo",
                  latency_s=0.25, prompt_tokens=3, completion_tokens=4, cost=0.0)
    ledger.record(call_id="c1", attempt=2, requested_model="openrouter/free", status="error",
                  error_kind="rate_limit_minute", http_status=429, sandbox=True)
    rows = ledger.rows(call_id="c1")
    assert [r["attempt"] for r in rows] == [1, 2]
    assert rows[0]["sandbox"] is True and rows[0]["served_model"] == "a/b:free"
    frame = ledger.dataframe(newest_first=True)
    assert list(frame["attempt"]) == [2, 1]
    assert str(frame["time"].dtype).startswith("datetime64")
    assert frame["sandbox"].tolist() == [True, True]


def test_record_returns_increasing_row_ids(make_ledger: LedgerFactory) -> None:
    ledger = make_ledger()
    first = ledger.record(call_id="a", status="ok")
    second = ledger.record(call_id="b", status="ok")
    assert 0 < first < second
    assert ledger.record_many([{"call_id": "c", "status": "ok"},
                               {"call_id": "d", "status": "error"}]) == 2
    assert [r["call_id"] for r in ledger.rows()] == ["a", "b", "c", "d"]
    assert len(ledger) == 4


def test_unknown_column_is_refused(make_ledger: LedgerFactory) -> None:
    ledger = make_ledger()
    with pytest.raises(TypeError, match="unknown ledger column"):
        ledger.record(call_id="x", stauts="ok")
    assert len(ledger) == 0


def test_record_many_refuses_unknown_column(make_ledger: LedgerFactory) -> None:
    ledger = make_ledger()
    with pytest.raises(TypeError, match="unknown ledger column"):
        ledger.record_many([{"call_id": "y", "stauts": "ok"}])
    assert len(ledger) == 0


def test_survives_reopen(make_ledger: LedgerFactory) -> None:
    make_ledger().record(call_id="keep", status="ok")
    again = make_ledger()
    assert [r["call_id"] for r in again.rows()] == ["keep"]
    assert again.read_only is False


def test_survives_reopen_and_is_wal(tmp_path: Path) -> None:
    """SQLite only: the file is in WAL mode."""
    path = tmp_path / "l.sqlite"
    Ledger(path).record(call_id="keep", status="ok")
    again = Ledger(path)
    assert [r["call_id"] for r in again.rows()] == ["keep"]
    mode = again._conn.execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_many_threads_lose_no_row(make_ledger: LedgerFactory) -> None:
    ledger = make_ledger()

    def write(n: int) -> None:
        for i in range(50):
            ledger.record(call_id=f"t{n}", attempt=i, status="ok")

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ledger) == 400
    assert sorted(r["attempt"] for r in ledger.rows(call_id="t3")) == list(range(50))


def test_several_processes_share_the_store(make_ledger: LedgerFactory) -> None:
    script = (
        "l = open_ledger(sys.argv[1], sys.argv[2])\n"
        "for i in range(100): l.record(call_id=sys.argv[3], attempt=i, status='ok')\n"
    )
    procs = [make_ledger.run_child(script, f"p{n}") for n in range(3)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0]
    ledger = make_ledger()
    assert len(ledger) == 300
    assert {r["call_id"] for r in ledger.rows()} == {"p0", "p1", "p2"}


def test_attempt_times_count_only_sent_free_attempts(make_ledger: LedgerFactory) -> None:
    ledger = make_ledger()
    ledger.record(call_id="a", requested_model="x/y:free", status="ok", account="k", epoch=100.0)
    ledger.record(call_id="b", requested_model="openrouter/free", status="error", http_status=429,
                  error_kind="rate_limit_minute", account="k", epoch=101.0)
    ledger.record(call_id="c", requested_model="x/y:free", status="error", error_kind="budget",
                  account="k", epoch=102.0)
    ledger.record(call_id="d", requested_model="x/y", status="ok", account="k", epoch=103.0)
    ledger.record(call_id="e", requested_model="x/y:free", status="ok", account="other",
                  epoch=104.0)
    assert ledger.attempt_times(since=0, account="k") == [100.0, 101.0]
    assert ledger.attempt_times(since=100.5, account="k") == [101.0]


def test_count_attempts_follows_the_quota_rules(make_ledger: LedgerFactory) -> None:
    ledger = make_ledger()
    ledger.record(call_id="a", requested_model="x/y:free", status="ok", account="k", epoch=100.0)
    ledger.record(call_id="b", requested_model="x/y:free", status="error", http_status=429,
                  error_kind="rate_limit_day", account="k", epoch=101.0)  # a spent day: not counted
    ledger.record(call_id="c", requested_model="x/y:free", status="error", http_status=400,
                  account="k", epoch=102.0)  # malformed: never reached the limiter
    ledger.record(call_id="d", requested_model="x/y:free", status="ok", account="k",
                  mode="replay", epoch=103.0)  # replayed: never sent
    ledger.record(call_id="e", requested_model="x/y:free", status="error", http_status=502,
                  account="k", epoch=104.0)
    ledger.record(call_id="f", requested_model="x/y", status="ok", account="k", epoch=105.0)
    ledger.record(call_id="g", requested_model="x/y:free", status="ok", account=None, epoch=106.0)
    assert ledger.count_attempts(since=0, account="k") == 2
    assert ledger.count_attempts(since=0, account="k", free_only=False) == 3
    assert ledger.count_attempts(since=104.5, account="k", free_only=False) == 1
    assert ledger.count_attempts(since=0, account=None) == 1
    assert ledger.attempt_times(since=0, account="k", free_only=False) == [100.0, 101.0, 104.0,
                                                                          105.0]


def test_cache_conversations_and_batches_read_back(make_ledger: LedgerFactory) -> None:
    ledger = make_ledger()
    ledger.record(call_id="a", request_hash="h1", status="ok", response="old")
    ledger.record(call_id="b", request_hash="h1", status="ok", response="new")
    ledger.record(call_id="c", request_hash="h1", status="ok", response="invalid", validated=False)
    ledger.record(call_id="d", request_hash="h2", status="error", http_status=500)
    hit = ledger.cached_answer("h1")
    assert hit is not None and hit["response"] == "new"
    assert ledger.cached_answer("h2") is None and ledger.cached_answer("nope") is None

    for turn, text in ((1, "t1"), (2, "t2")):
        ledger.record(call_id=f"k{turn}", conversation="chat", conversation_id="cv1", turn=turn,
                      attempt=1, requested_model="m/x:free", status="ok", turn_messages=text)
    ledger.record(call_id="k2b", conversation="chat", conversation_id="cv1", turn=2, attempt=2,
                  requested_model="m/x:free", status="ok", turn_messages="t2-retry")
    assert ledger.conversation_turns("chat") == ("cv1", "m/x:free", ["t1", "t2-retry"])
    assert ledger.conversation_turns("other") is None

    ledger.record(call_id="r1", batch_id="B", row_key="0", status="error", http_status=429)
    ledger.record(call_id="r1", batch_id="B", row_key="0", status="ok", response="zero")
    ledger.record(call_id="r2", batch_id="B", row_key="1", status="cached", response="one")
    ledger.record(call_id="r3", batch_id="B", row_key="2", status="ok", tool_calls="[]")
    answers = ledger.batch_answers("B")
    assert sorted(answers) == ["0", "1"]
    assert answers["0"]["response"] == "zero" and answers["1"]["status"] == "cached"


def test_dataframe_cache_sees_new_rows_from_any_process(make_ledger: LedgerFactory) -> None:
    ledger = make_ledger()
    ledger.record(call_id="a", status="ok", prompt_tokens=1)
    first = ledger.dataframe()
    first.loc[0, "call_id"] = "mutated"  # the caller's copy, not the cache
    script = ("open_ledger(sys.argv[1], sys.argv[2])"
              ".record(call_id='b', status='error', http_status=429)\n")
    assert make_ledger.run_child(script).wait(timeout=60) == 0
    frame = ledger.dataframe()
    assert frame["call_id"].tolist() == ["a", "b"]
    assert frame["http_status"].tolist()[1] == 429 and str(frame["http_status"].dtype) == "Int64"
    assert ledger.dataframe(newest_first=True, limit=1)["call_id"].tolist() == ["b"]
    assert ledger.dataframe(columns=["call_id", "time"]).columns.tolist() == ["call_id", "time"]


def test_extended_frame_equals_a_fresh_load(make_ledger: LedgerFactory) -> None:
    """Output must not depend on whether the cached frame was extended or loaded anew."""
    ledger = make_ledger()
    ledger.record(call_id="a", status="error", error_kind="budget", prompt=None)
    ledger.dataframe()
    ledger.record(call_id="b", status="ok", prompt="hello")  # error_kind NULL in the new chunk
    extended = ledger.dataframe(columns="all")
    fresh = make_ledger().dataframe(columns="all")
    assert list(extended.dtypes) == list(fresh.dtypes)
    assert extended.astype(object).where(extended.notna(), None).values.tolist() == \
        fresh.astype(object).where(fresh.notna(), None).values.tolist()


def test_rows_filter_by_call_batch_and_session(make_ledger: LedgerFactory) -> None:
    ledger = make_ledger()
    ledger.record(call_id="a", batch_id="b1", session_id="s1", status="ok")
    ledger.record(call_id="b", batch_id="b1", session_id="s2", status="ok")
    ledger.record(call_id="c", session_id="s1", status="error")
    assert [r["call_id"] for r in ledger.rows(batch_id="b1")] == ["a", "b"]
    assert [r["call_id"] for r in ledger.rows(session_id="s1")] == ["a", "c"]
    assert [r["call_id"] for r in ledger.rows(batch_id="b1", session_id="s1")] == ["a"]
    assert [r["call_id"] for r in ledger.rows(newest_first=True, limit=2)] == ["c", "b"]
