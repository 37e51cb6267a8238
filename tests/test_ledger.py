"""The SQLite ledger: schema, DataFrame view, threads, processes."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from openrouter_nb.ledger import CORE_COLUMNS, Ledger


def test_core_columns_are_the_design_contract(tmp_path: Path) -> None:
    assert CORE_COLUMNS == (
        "time", "call_id", "attempt", "requested_model", "served_model", "provider",
        "generation_id", "status", "error_kind", "http_status", "latency_s", "ttft_s",
        "prompt_tokens", "completion_tokens", "cost", "validated", "fallback", "sandbox",
        "prompt", "response",
    )
    frame = Ledger(tmp_path / "l.sqlite").dataframe()
    assert list(frame.columns[: len(CORE_COLUMNS)]) == list(CORE_COLUMNS)


def test_record_and_read_back(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.sqlite")
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


def test_unknown_column_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="unknown ledger column"):
        Ledger(tmp_path / "l.sqlite").record(call_id="x", stauts="ok")


def test_survives_reopen_and_is_wal(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    Ledger(path).record(call_id="keep", status="ok")
    again = Ledger(path)
    assert [r["call_id"] for r in again.rows()] == ["keep"]
    mode = again._conn.execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_many_threads_lose_no_row(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.sqlite")

    def write(n: int) -> None:
        for i in range(50):
            ledger.record(call_id=f"t{n}", attempt=i, status="ok")

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ledger) == 400


def test_several_processes_share_the_file(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    script = (
        "import sys; from openrouter_nb.ledger import Ledger\n"
        "l = Ledger(sys.argv[1])\n"
        "for i in range(100): l.record(call_id=sys.argv[2], attempt=i, status='ok')\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", script, str(path), f"p{n}"])
             for n in range(3)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0]
    ledger = Ledger(path)
    assert len(ledger) == 300
    assert {r["call_id"] for r in ledger.rows()} == {"p0", "p1", "p2"}


def test_attempt_times_count_only_sent_free_attempts(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.sqlite")
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


def test_dataframe_cache_sees_new_rows_from_any_process(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    ledger = Ledger(path)
    ledger.record(call_id="a", status="ok", prompt_tokens=1)
    first = ledger.dataframe()
    first.loc[0, "call_id"] = "mutated"  # the caller's copy, not the cache
    script = ("import sys; from openrouter_nb.ledger import Ledger; "
              "Ledger(sys.argv[1]).record(call_id='b', status='error', http_status=429)")
    subprocess.run([sys.executable, "-c", script, str(path)], check=True)
    frame = ledger.dataframe()
    assert frame["call_id"].tolist() == ["a", "b"]
    assert frame["http_status"].tolist()[1] == 429 and str(frame["http_status"].dtype) == "Int64"
    assert ledger.dataframe(newest_first=True, limit=1)["call_id"].tolist() == ["b"]
    assert ledger.dataframe(columns=["call_id", "time"]).columns.tolist() == ["call_id", "time"]


def test_extended_frame_equals_a_fresh_load(tmp_path: Path) -> None:
    """Output must not depend on whether the cached frame was extended or loaded anew."""
    ledger = Ledger(tmp_path / "l.sqlite")
    ledger.record(call_id="a", status="error", error_kind="budget", prompt=None)
    ledger.dataframe()
    ledger.record(call_id="b", status="ok", prompt="hello")  # error_kind NULL in the new chunk
    extended = ledger.dataframe(columns="all")
    fresh = Ledger(tmp_path / "l.sqlite").dataframe(columns="all")
    assert list(extended.dtypes) == list(fresh.dtypes)
    assert extended.astype(object).where(extended.notna(), None).values.tolist() == \
        fresh.astype(object).where(fresh.notna(), None).values.tolist()


def test_rows_filter_by_call_batch_and_session(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.sqlite")
    ledger.record(call_id="a", batch_id="b1", session_id="s1", status="ok")
    ledger.record(call_id="b", batch_id="b1", session_id="s2", status="ok")
    ledger.record(call_id="c", session_id="s1", status="error")
    assert [r["call_id"] for r in ledger.rows(batch_id="b1")] == ["a", "b"]
    assert [r["call_id"] for r in ledger.rows(session_id="s1")] == ["a", "c"]
    assert [r["call_id"] for r in ledger.rows(batch_id="b1", session_id="s1")] == ["a"]
    assert [r["call_id"] for r in ledger.rows(newest_first=True, limit=2)] == ["c", "b"]
