"""Usage charts from a ledger fixture: the frames exactly, the figure's panels and titles."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from IPython.core.interactiveshell import InteractiveShell

from openrouter_nb.charts import (
    LEDGER_COLUMNS,
    Usage,
    drift_figure,
    drift_frames,
    usage_figure,
    usage_frames,
)
from openrouter_nb.ledger import Ledger
from openrouter_nb.session import Session

pytest.importorskip("matplotlib")

NOW = 1_788_800_000.0  # 2026-09-07 16:53:20 UTC
MIDNIGHT = 1_788_739_200.0
ROUTER, GEMMA, PAID = "openrouter/free", "google/gemma-3-27b-it:free", "meta-llama/llama-3.3-70b-instruct"
A, B = "openai/gpt-oss-20b:free", "qwen/qwen3-coder:free"


def at(hour: int, minute: int, second: int = 0, day: int = 0) -> float:
    return MIDNIGHT + day * 86400 + hour * 3600 + minute * 60 + second


def row(epoch: float, model: str, status: str = "ok", **fields: Any) -> dict[str, Any]:
    base = dict(epoch=epoch, requested_model=model, status=status, account="acct", mode="sandbox",
                http_status=200 if status == "ok" else None)
    return {**base, **fields}


ROWS = [
    row(at(9, 0, 10), ROUTER, served_model=A, latency_s=1.0, ttft_s=0.5, prompt_tokens=10,
        completion_tokens=20, reasoning_tokens=5, validated=True),
    row(at(9, 0, 20), ROUTER, served_model=A, latency_s=2.0, ttft_s=0.6, prompt_tokens=10,
        completion_tokens=20, reasoning_tokens=5, validated=False),
    row(at(9, 0, 30), ROUTER, served_model=A, latency_s=3.0, ttft_s=0.7, prompt_tokens=10,
        completion_tokens=20, reasoning_tokens=5),
    row(at(16, 50), GEMMA, served_model=GEMMA, latency_s=0.5, ttft_s=0.2, prompt_tokens=7,
        completion_tokens=8),
    row(at(16, 50, 5), GEMMA, status="error", error_kind="rate_limit_minute", http_status=429),
    row(at(16, 51), GEMMA, status="cached", served_model=GEMMA, prompt_tokens=7,
        completion_tokens=8),
    row(at(16, 52), GEMMA, status="error", error_kind="budget"),
    row(at(16, 52, 30), PAID, served_model=PAID, latency_s=2.0, prompt_tokens=3,
        completion_tokens=4),
    row(at(4, 0, day=-1), ROUTER, served_model=B, latency_s=0.8, ttft_s=0.3, prompt_tokens=1,
        completion_tokens=1),
]


@pytest.fixture
def ledger_rows(tmp_path: Path) -> pd.DataFrame:
    ledger = Ledger(tmp_path / "ledger.sqlite")
    for fields in ROWS:
        ledger.record(**fields)
    return ledger.dataframe(columns=LEDGER_COLUMNS)


def test_usage_frames_from_a_ledger(ledger_rows: pd.DataFrame) -> None:
    frames = usage_frames(ledger_rows, now=NOW, days=1, day_limit=50, minute_limit=20)
    hourly = frames["hourly"]
    assert list(hourly.columns) == ["hour", "sent", "cached", "total", "day_limit"]
    assert hourly["hour"].tolist() == list(range(24))
    assert hourly["sent"].tolist() == [0] * 9 + [3] + [0] * 6 + [2] + [0] * 7
    assert hourly["cached"].tolist() == [0] * 16 + [1] + [0] * 7
    assert hourly["total"].tolist() == [0] * 9 + [3] * 7 + [5] * 8
    assert set(hourly["day_limit"]) == {50}
    pd.testing.assert_frame_equal(frames["minutes"], pd.DataFrame(
        {"minute": ["09:00", "16:50"], "requests": [3, 2], "minute_limit": [20, 20]}))
    latency = frames["latency"]
    assert latency["model"].tolist() == [GEMMA, PAID, A]
    assert latency["answers"].tolist() == [1, 1, 3]
    assert latency["latency_median_s"].tolist() == [0.5, 2.0, 2.0]
    assert latency["latency_p95_s"].tolist() == [0.5, 2.0, 2.9]
    assert latency["ttft_median_s"].tolist()[::2] == [0.2, 0.6]
    assert latency["ttft_p95_s"].tolist()[2] == 0.69
    assert math.isnan(latency["ttft_median_s"][1])  # not streamed: no first-token time
    pd.testing.assert_frame_equal(frames["outcomes"], pd.DataFrame(
        {"outcome": ["ok", "budget", "cached", "rate_limit_minute"], "attempts": [5, 1, 1, 1]}))
    pd.testing.assert_frame_equal(frames["tokens"], pd.DataFrame(
        {"model": [GEMMA, PAID, A], "prompt_tokens": [7, 3, 30],
         "completion_tokens": [8, 4, 60], "reasoning_tokens": [0, 0, 15]}))


def test_usage_figure_panels_and_titles(ledger_rows: pd.DataFrame) -> None:
    frames = usage_frames(ledger_rows, now=NOW, days=1)
    figure = usage_figure(frames, day="2026-09-07")
    titles = [ax.get_title() for ax in figure.axes]
    assert figure.get_suptitle() == "Usage on 2026-09-07 (UTC)"
    assert titles == ["Free requests today by hour", "Busiest minutes today",
                      "Latency and first token per model", "Outcomes by kind",
                      "Tokens by model"]
    hours, minutes, latency, outcomes, tokens = figure.axes
    assert (hours.get_xlabel(), hours.get_ylabel()) == ("hour (UTC)", "requests")
    assert [t.get_text() for t in hours.get_legend().get_texts()] == [
        "running total", "daily limit", "sent", "cached (free)"]
    assert [t.get_text() for t in minutes.get_xticklabels()] == ["09:00", "16:50"]
    assert minutes.get_legend().get_texts()[0].get_text() == "20/min limit"
    assert [t.get_text() for t in latency.get_yticklabels()] == [GEMMA, PAID, A]
    assert latency.get_xlabel() == "seconds"
    assert [t.get_text() for t in outcomes.get_yticklabels()] == [
        "ok", "budget", "cached", "rate_limit_minute"]
    assert [t.get_text() for t in tokens.get_legend().get_texts()] == [
        "prompt tokens", "answer tokens", "reasoning tokens"]
    png = Usage("Usage (today)", frames, figure).png()
    assert png.startswith(b"\x89PNG") and png == Usage("u", frames, figure).png()


def test_pool_drift_frames(ledger_rows: pd.DataFrame) -> None:
    frames = drift_frames(ledger_rows, now=NOW, days=2)
    pd.testing.assert_frame_equal(frames["served"], pd.DataFrame({
        "day": ["2026-09-06", "2026-09-07"], "model": [B, A], "answers": [1, 3],
        "share": [1.0, 1.0], "latency_median_s": [0.8, 2.0], "valid_rate": [math.nan, 0.5]}))
    pd.testing.assert_frame_equal(frames["daily"], pd.DataFrame(
        {"day": ["2026-09-06", "2026-09-07"], "answers": [1, 3], "models": [1, 1]}))
    assert drift_frames(ledger_rows, now=NOW, days=1)["served"]["model"].tolist() == [A]
    figure = drift_figure(frames, days=2)
    assert [ax.get_title() for ax in figure.axes] == [
        "Models the free router served, last 2 days",
        "Median latency by served model (schema validity)"]
    assert [t.get_text() for t in figure.axes[0].get_legend().get_texts()] == [A, B]


def test_orn_usage_and_stats_magic(ip: InteractiveShell, session: Session,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    import openrouter_nb as orn

    session.ask("Hello", "openai/gpt-oss-20b:free")
    shown = orn.usage()
    assert isinstance(shown, Usage) and shown.frames["outcomes"]["attempts"].tolist() == [1]
    assert repr(shown).startswith("Usage (today) (hourly: 24 rows, minutes: 1 rows")
    stats = ip.run_line_magic("openrouter", "stats --days 3")
    assert stats.title == "Usage (last 3 days)"
    ip.run_line_magic("openrouter", "stats --days 0")
    assert "days must be a whole number from 1 to 366" in capsys.readouterr().out
    drift = orn.pool_drift(days=3)
    assert drift.frames["served"].empty and len(drift.figure.axes) == 2
