"""DataFrame batches: paced, every row in the ledger as it completes, resumable."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from openrouter_nb.batching import BatchProgress
from openrouter_nb.session import Session

from .conftest import FakeClock

MODEL = "openai/gpt-oss-20b:free"
TEXTS = [f"Review number {n}: the product was {'great' if n % 2 else 'poor'}."
         for n in range(15)]


def chat_requests(session: Session) -> int:
    return sum(1 for r in session.sandbox.requests if r.path.endswith("/chat/completions"))


def test_batch_answers_every_row_and_logs_it(make_session: Callable[..., Session],
                                             clock: FakeClock) -> None:
    session = make_session(clock=clock, sleep=clock.sleep)
    frame = pd.DataFrame({"text": TEXTS[:4], "id": [10, 11, 12, 13]})
    seen: list[BatchProgress] = []
    result = session.batch(frame, "Classify as positive or negative: {text}", model=MODEL,
                           out="label", progress=seen.append)
    assert list(result.columns) == ["text", "id", "label", "label_model", "label_status"]
    assert (result["label_status"] == "ok").all() and (result["label_model"] == MODEL).all()
    assert result["label"].str.contains("sandbox").all()
    prompts = [r.json["messages"][-1]["content"] for r in session.sandbox.requests]
    assert prompts[0] == f"Classify as positive or negative: {TEXTS[0]}"
    rows = session.ledger.rows()
    assert len(rows) == 4 and len({r["batch_id"] for r in rows}) == 1
    assert [s.done for s in seen] == [1, 2, 3, 4] and seen[-1].finished


def test_unknown_placeholder_is_refused(make_session: Callable[..., Session]) -> None:
    session = make_session()
    with pytest.raises(ValueError, match=r"\{txt\}, which is not a column"):
        session.batch(pd.DataFrame({"text": ["a"]}), "Classify: {txt}")
    assert chat_requests(session) == 0


def test_resume_after_daily_cap_sends_exactly_the_missing_rows(
        make_session: Callable[..., Session], clock: FakeClock) -> None:
    session = make_session(clock=clock, sleep=clock.sleep, sandbox_options={"rpd": 10})
    frame = pd.DataFrame({"text": TEXTS})
    first = session.batch(frame, "Label: {text}", model=MODEL)
    statuses = first["answer_status"].tolist()
    assert statuses == ["ok"] * 10 + ["rate_limit_day"] + ["not_sent"] * 4
    assert "Run the same call again to resume" in first.attrs["openrouter_batch"]["message"]
    assert chat_requests(session) == 11  # the 11th got the per-day 429; the rest never left

    # Same call, same day: refused locally, nothing sent, nothing lost.
    again = session.batch(frame, "Label: {text}", model=MODEL)
    assert chat_requests(session) == 11
    assert again["answer_status"].tolist()[:10] == ["ok"] * 10

    clock.now += 86400  # the next UTC day
    final = session.batch(frame, "Label: {text}", model=MODEL)
    assert chat_requests(session) == 11 + 5
    assert (final["answer_status"] == "ok").all()
    assert final.attrs["openrouter_batch"]["resumed"] == 10
    assert final["answer"].tolist()[:10] == first["answer"].tolist()[:10]


def test_budget_stops_a_batch_cleanly(make_session: Callable[..., Session],
                                      clock: FakeClock) -> None:
    session = make_session(clock=clock, sleep=clock.sleep, budget=3)
    result = session.batch(pd.DataFrame({"text": TEXTS[:5]}), "Label: {text}", model=MODEL)
    assert result["answer_status"].tolist() == ["ok", "ok", "ok", "budget", "not_sent"]
    assert chat_requests(session) == 3


def test_schema_batch_fills_a_data_column(make_session: Callable[..., Session],
                                          clock: FakeClock) -> None:
    session = make_session(clock=clock, sleep=clock.sleep, retries=2)
    schema = {"type": "object", "properties": {"label": {"enum": ["positive", "negative"]}},
              "required": ["label"]}
    result = session.batch(pd.DataFrame({"text": TEXTS[:3]}), "Label: {text}",
                           model="google/gemma-3-27b-it:free", schema=schema)
    assert result["answer_data"].map(lambda d: d["label"] in ("positive", "negative")).all()


WORKER = """
import sys
import pandas as pd
from openrouter_nb.session import Session

session = Session(sandbox=True, home=sys.argv[1], retries=0,
                  sandbox_options={"latency_ms": 400, "rpm": 1000, "rpd": 1000})
frame = pd.DataFrame({"text": [f"row {n}" for n in range(30)]})
# Two in flight, 0.4 s each: 30 rows take ~6 s, so the kill after 8 rows (~1.6 s) has seconds
# to spare even on a loaded machine (32 in flight would finish every row in one wave).
session.batch(frame, "Label: {text}", model="openai/gpt-oss-20b:free", progress=None,
              concurrency=2)
"""


def _ok_rows(home: Path) -> int:
    path = home / "ledger.sqlite"
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(path, timeout=5) as conn:
            return conn.execute("SELECT COUNT(*) FROM attempts WHERE status = 'ok'").fetchone()[0]
    except sqlite3.OperationalError:
        return 0  # table not created yet


def test_sigkill_mid_batch_loses_no_finished_row(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENROUTER")}
    worker = subprocess.Popen([sys.executable, "-c", WORKER, str(tmp_path)], env=env)
    deadline = time.monotonic() + 60
    while _ok_rows(tmp_path) < 8 and time.monotonic() < deadline:
        time.sleep(0.05)
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=10)
    assert worker.returncode == -signal.SIGKILL
    finished = _ok_rows(tmp_path)
    assert 8 <= finished < 30

    session = Session(sandbox=True, home=tmp_path, retries=0,
                      sandbox_options={"rpm": 1000, "rpd": 1000})
    frame = pd.DataFrame({"text": [f"row {n}" for n in range(30)]})
    result = session.batch(frame, "Label: {text}", model=MODEL, progress=None)
    assert (result["answer_status"] == "ok").all()
    assert chat_requests(session) == 30 - finished  # nothing finished was sent again
    assert result.attrs["openrouter_batch"]["resumed"] == finished


def test_public_batch_can_be_called_again(make_session: Callable[..., Session],
                                          clock: FakeClock) -> None:
    """A submodule named like a public function would replace it after first import."""
    import openrouter_nb as orn
    from openrouter_nb.session import set_session

    session = make_session(clock=clock, sleep=clock.sleep)
    old = set_session(session)
    try:
        frame = pd.DataFrame({"text": TEXTS[:2]})
        first = orn.batch(frame, "Label: {text}", model=MODEL, progress=None)
        again = orn.batch(frame, "Label: {text}", model=MODEL, progress=None)
    finally:
        set_session(old)
    assert callable(orn.batch) and callable(orn.compare)
    assert again.attrs["openrouter_batch"]["resumed"] == 2 == len(first)
