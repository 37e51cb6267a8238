"""Concurrent batches: several rows in flight, paced, resumable; the async API."""

from __future__ import annotations

import asyncio
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

from openrouter_nb.batching import BatchProgress, text_progress
from openrouter_nb.sandbox import Sandbox, SandboxServer, sandbox_key
from openrouter_nb.session import Session

from .conftest import FakeClock

MODEL = "openai/gpt-oss-20b:free"
PAID = "meta-llama/llama-3.3-70b-instruct"


def chats(sandbox: Sandbox) -> list:
    return [r for r in sandbox.requests if r.path.endswith("/chat/completions")]


def peak_overlap(records: list) -> int:
    """The most requests the sandbox was answering at one moment."""
    edges = sorted([(r.perf_start, 1) for r in records] + [(r.perf_end, -1) for r in records])
    peak = now = 0
    for _, step in edges:
        now += step
        peak = max(peak, now)
    return peak


def test_rows_are_in_flight_together_and_keep_their_order(
        make_session: Callable[..., Session]) -> None:
    session = make_session(rpm=1000, rpd=1000,
                           sandbox_options={"latency_ms": 100, "rpm": 1000, "rpd": 1000})
    frame = pd.DataFrame({"text": [f"row {n}" for n in range(12)]}, index=range(100, 112))
    seen: list[BatchProgress] = []
    result = session.batch(frame, "Label: {text}", model=MODEL, concurrency=4,
                           progress=seen.append)
    assert result.index.tolist() == list(range(100, 112))
    assert (result["answer_status"] == "ok").all()
    assert all(f'"Label: row {n}"' in text for n, text in enumerate(result["answer"]))
    assert peak_overlap(chats(session.sandbox)) == 4
    assert max(s.in_flight for s in seen) >= 3 and seen[-1].finished
    assert seen[-1].in_flight == 0 and seen[-1].answered == 12 and seen[-1].not_sent == 0
    assert result.attrs["openrouter_batch"]["concurrency"] == 4


def test_concurrency_is_checked(make_session: Callable[..., Session]) -> None:
    session = make_session()
    with pytest.raises(ValueError, match="concurrency must be a whole number"):
        session.batch(pd.DataFrame({"text": ["a"]}), "Label: {text}", concurrency=0)


def test_daily_stop_with_requests_in_flight_resumes_the_next_day(
        make_session: Callable[..., Session], clock: FakeClock) -> None:
    # The pacer believes in 50 a day; the service allows 10: 15 rows go out together.
    session = make_session(clock=clock, sleep=clock.sleep, rpd=50,
                           sandbox_options={"rpd": 10, "latency_ms": 30})
    frame = pd.DataFrame({"text": [f"review {n}" for n in range(15)]})
    seen: list[BatchProgress] = []
    first = session.batch(frame, "Label: {text}", model=MODEL, concurrency=15,
                          progress=seen.append)
    statuses = first["answer_status"].tolist()
    refused = statuses.count("rate_limit_day")
    assert statuses.count("ok") == 10 and refused >= 1
    assert statuses.count("not_sent") == 5 - refused  # rows not yet started when it stopped
    assert max(s.in_flight for s in seen) > 1
    assert first.attrs["openrouter_batch"]["message"].startswith("Stopped at row ")
    sent = len(chats(session.sandbox))  # the rest were refused locally once the 429 was known
    assert 11 <= sent <= 10 + refused
    assert [r.status for r in chats(session.sandbox)].count(429) == sent - 10
    again = session.batch(frame, "Label: {text}", model=MODEL)
    assert len(chats(session.sandbox)) == sent  # blocked locally: nothing sent
    assert again.attrs["openrouter_batch"]["resumed"] == 10
    clock.now += 86400
    final = session.batch(frame, "Label: {text}", model=MODEL)
    assert (final["answer_status"] == "ok").all()
    assert len(chats(session.sandbox)) == sent + 5  # exactly the 5 missing rows
    assert final["answer"].tolist() == [first["answer"][n] if statuses[n] == "ok"
                                        else final["answer"][n] for n in range(15)]


def test_known_daily_limit_sends_no_row_past_it(make_session: Callable[..., Session],
                                                 clock: FakeClock) -> None:
    session = make_session(clock=clock, sleep=clock.sleep, sandbox_options={"rpd": 6})
    result = session.batch(pd.DataFrame({"text": [f"r{n}" for n in range(9)]}),
                           "Label: {text}", model=MODEL, concurrency=8)
    assert result["answer_status"].tolist() == ["ok"] * 6 + ["rate_limit_day"] + ["not_sent"] * 2
    assert len(chats(session.sandbox)) == 7


def test_paid_rows_back_off_on_429(make_session: Callable[..., Session],
                                   clock: FakeClock) -> None:
    session = make_session(retries=3, clock=clock, sleep=clock.sleep,
                           sandbox_options={"credits": 100})
    session.sandbox.queue_fault("upstream_429", count=3)
    frame = pd.DataFrame({"text": [f"row {n}" for n in range(6)]})
    result = session.batch(frame, "Label: {text}", model=PAID, concurrency=6)
    info = result.attrs["openrouter_batch"]
    assert info["backoffs"] == 3  # each retried 429 halved the rows in flight
    assert (result["answer_status"] == "ok").all()
    assert [r.status for r in chats(session.sandbox)].count(429) == 3


def test_text_progress_names_in_flight_and_not_sent() -> None:
    import io

    out = io.StringIO()
    report = text_progress(out)
    report(BatchProgress("b-1", 5, 12, 2, 1, 40, 65.0, in_flight=3))
    assert out.getvalue() == ("\rrows 5/12 (2 from the ledger) · 4 answered · 1 failed · "
                              "3 in flight · 4 not sent · 40 left today · ETA 1:05   ")


WORKER = """
import sys
import pandas as pd
from openrouter_nb.session import Session

session = Session(api_key=sys.argv[3], base_url=sys.argv[2], sandbox=False, home=sys.argv[1],
                  retries=0, rpm=1000, rpd=1000)
frame = pd.DataFrame({"text": [f"row {n}" for n in range(40)]})
session.batch(frame, "Label: {text}", model="openai/gpt-oss-20b:free", progress=None,
              concurrency=6)
"""


def _ok_prompts(home: Path) -> set[str]:
    path = home / "ledger.sqlite"
    if not path.exists():
        return set()
    try:
        with sqlite3.connect(path, timeout=5) as conn:
            rows = conn.execute("SELECT prompt FROM attempts WHERE status = 'ok'").fetchall()
    except sqlite3.OperationalError:
        return set()
    return {r[0] for r in rows}


def test_sigkill_with_rows_in_flight_loses_nothing_and_resends_nothing(tmp_path: Path) -> None:
    sandbox = Sandbox(rpm=1000, rpd=1000, latency_ms=600)  # ~4 s in all: the kill lands mid-batch
    key = sandbox_key("sigkill")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENROUTER")}
    with SandboxServer(sandbox) as server:
        worker = subprocess.Popen([sys.executable, "-c", WORKER, str(tmp_path),
                                   server.base_url, key], env=env)
        deadline = time.monotonic() + 60
        while len(_ok_prompts(tmp_path)) < 8 and time.monotonic() < deadline:
            time.sleep(0.02)
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        assert worker.returncode == -signal.SIGKILL
        answered = _ok_prompts(tmp_path)
        arrived = len(chats(sandbox))
        assert 8 <= len(answered) < 40
        assert arrived > len(answered)  # some rows were in flight when the kernel died

        session = Session(api_key=key, base_url=server.base_url, sandbox=False, home=tmp_path,
                          retries=0, rpm=1000, rpd=1000)
        frame = pd.DataFrame({"text": [f"row {n}" for n in range(40)]})
        result = session.batch(frame, "Label: {text}", model=MODEL, progress=None)
        session.close()
    resent = [r.json["messages"][-1]["content"] for r in chats(sandbox)[arrived:]]
    assert (result["answer_status"] == "ok").all(), result["answer_status"].value_counts()
    assert len(resent) == 40 - len(answered)
    assert not set(resent) & answered  # no answered row was sent twice
    assert result.attrs["openrouter_batch"]["resumed"] == len(answered)


# -- the async API ------------------------------------------------------------------------------
def test_aask_gathered_in_plain_asyncio_runs_concurrently(
        make_session: Callable[..., Session]) -> None:
    session = make_session(rpm=1000, rpd=1000,  # 400 ms each: overlap shows on a loaded machine
                           sandbox_options={"latency_ms": 400, "rpm": 1000, "rpd": 1000})

    async def main() -> list:
        return await asyncio.gather(*(session.aask(f"question {n}", MODEL) for n in range(8)))

    answers = asyncio.run(main())
    assert [f'"question {n}"' in a.text for n in range(8) for a in [answers[n]]] == [True] * 8
    assert len({a.call_id for a in answers}) == 8
    assert peak_overlap(chats(session.sandbox)) >= 4
    assert len(session.ledger.rows()) == 8


def test_aask_shares_the_budget_and_the_pacer(make_session: Callable[..., Session]) -> None:
    session = make_session(budget=3)

    async def main() -> list:
        return await asyncio.gather(*(session.aask(f"q {n}", MODEL) for n in range(5)),
                                    return_exceptions=True)

    results = asyncio.run(main())
    kinds = sorted(getattr(r, "kind", "ok") for r in results)
    assert kinds == ["budget", "budget", "ok", "ok", "ok"]
    assert len(chats(session.sandbox)) == 3


def test_conversation_aask_keeps_turns_in_order(make_session: Callable[..., Session]) -> None:
    session = make_session()
    tutor = session.chat(MODEL, name="tutor")

    async def main() -> tuple:
        first = await tutor.aask("What is HTTP?")
        second = await tutor.aask("And a 429?")
        return first, second

    first, second = asyncio.run(main())
    assert (first.turn, second.turn) == (1, 2)
    assert len(chats(session.sandbox)[-1].json["messages"]) == 3


def test_cancelled_streaming_aask_logs_an_interrupted_row(
        make_session: Callable[..., Session]) -> None:
    session = make_session(sandbox_options={"latency_ms": 600})

    async def main() -> None:
        task = asyncio.create_task(session.aask("a long answer please", MODEL, stream=True))
        await asyncio.sleep(0.15)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(100):  # the worker thread notices at its next chunk
            if session.ledger.rows():
                break
            await asyncio.sleep(0.02)

    asyncio.run(main())
    rows = session.ledger.rows()
    assert [(r["status"], r["error_kind"]) for r in rows] == [("interrupted", "interrupted")]


def test_abatch_in_asyncio(make_session: Callable[..., Session]) -> None:
    session = make_session()
    frame = pd.DataFrame({"text": ["a", "b", "c"]})
    result = asyncio.run(session.abatch(frame, "Label: {text}", model=MODEL, progress=None))
    assert (result["answer_status"] == "ok").all() and len(chats(session.sandbox)) == 3


def test_accessor_passes_concurrency(session: Session) -> None:
    import openrouter_nb.pandas  # noqa: F401 - registers df.openrouter

    frame = pd.DataFrame({"text": [f"row {n}" for n in range(5)]})
    result = frame.openrouter.ask("Label: {text}", model=MODEL, concurrency=3, progress=None)
    assert (result["answer_status"] == "ok").all()
    assert result.attrs["openrouter_batch"]["concurrency"] == 3
    assert peak_overlap(chats(session.sandbox)) <= 3
