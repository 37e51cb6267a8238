"""``%openrouter log``: a compact table, newest first, escaped, plain text for terminals."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pandas as pd
import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from openrouter_nb.notebook.log_view import LogView, local_time, model_cell
from openrouter_nb.session import Session


def frame(**overrides: object) -> pd.DataFrame:
    row = {"time": pd.Timestamp("2026-12-06 14:03:27.123456789", tz="UTC"), "status": "ok",
           "requested_model": "openrouter/free", "served_model": "openai/gpt-oss-20b:free",
           "latency_s": 0.4211, "prompt_tokens": 12, "completion_tokens": 48,
           "error_kind": None, "prompt": "Explain SSE\nin two sentences."}
    row.update(overrides)
    return pd.DataFrame([row])


@pytest.fixture
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    import time

    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_plain_text_is_an_aligned_table(utc: None) -> None:
    view = LogView(frame(), today=dt.date(2026, 12, 6))
    assert repr(view) == (
        "time         model                               latency  tokens   error  prompt\n"
        "14:03:27  ✓  openrouter/free → gpt-oss-20b:free  0.42 s   12 → 48         "
        "Explain SSE in two sentences.")


def test_other_days_show_the_date_and_missing_values_are_blank(utc: None) -> None:
    view = LogView(frame(status="error", served_model=None, latency_s=None, prompt_tokens=None,
                         completion_tokens=None, error_kind="rate_limit_day",
                         requested_model="google/gemma-3-27b-it:free"),
                   today=dt.date(2026, 12, 7))
    line = view.lines[0]
    assert (line.time, line.mark, line.model, line.latency, line.tokens, line.error) == \
        ("12-06 14:03:27", "✗", "gemma-3-27b-it:free", "", "", "rate_limit_day")


def test_local_time_follows_the_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        stamp = pd.Timestamp("2026-12-06 16:03:27", tz="UTC")
        assert local_time(stamp, today=dt.date(2026, 12, 6)) == "12-07 01:03:27"
        assert local_time(stamp, today=dt.date(2026, 12, 7)) == "01:03:27"
    finally:
        monkeypatch.undo()
        time.tzset()


def test_model_text_is_escaped_and_stripped() -> None:
    view = LogView(frame(prompt="<img src=x onerror=alert(1)>\x1b[31mred\x9b2J",
                         error_kind="<b>x</b>", status="error"))
    page = view._repr_html_()
    assert "<img" not in page and "<b>x" not in page and "\x1b" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;red" in page
    assert "\x1b" not in repr(view) and "\x9b" not in repr(view)


def test_theme_neutral_html() -> None:
    page = LogView(frame())._repr_html_()
    assert "var(--jp-ui-font-color1" in page and "var(--jp-border-color2" in page
    assert "background:transparent" in page
    assert "#fff" not in page.lower() and "background:white" not in page
    assert "color:black" not in page and "#000" not in page
    assert page.count("<tr") == 2 and "white-space:nowrap" in page


def test_magic_log_is_compact_newest_first(ip: InteractiveShell, session: Session) -> None:
    with capture_output():
        ip.run_cell_magic("openrouter", "-m google/gemma-3-27b-it:free", "first question")
        ip.run_cell_magic("openrouter", "-m nobody/nothing:free", "second question")
    with capture_output():
        view = ip.run_line_magic("openrouter", "log")
    assert isinstance(view, LogView)
    assert [line.status for line in view.lines] == ["error", "ok"]
    lines = repr(view).splitlines()
    assert len(lines) == 3 and lines[0].split() == ["time", "model", "latency", "tokens",
                                                    "error", "prompt"]
    assert " ✗  nothing:free " in lines[1] and lines[1].rstrip().endswith("second question")
    assert "model_unavailable" in lines[1]
    assert " ✓  gemma-3-27b-it:free " in lines[2] and lines[2].endswith("first question")
    assert list(view["status"]) == ["error", "ok"]  # the DataFrame behind it
    assert len(view.frame.columns) > 7


def test_empty_ledger(ip: InteractiveShell, session: Session) -> None:
    with capture_output():
        view = ip.run_line_magic("openrouter", "log")
    assert repr(view) == "The ledger is empty: nothing asked yet (ask with %%openrouter)."


def test_model_cell_names_served_only_when_it_differs() -> None:
    assert model_cell("google/gemma-3-27b-it:free", "google/gemma-3-27b-it:free") == \
        "gemma-3-27b-it:free"
    assert model_cell("openrouter/free", "qwen/qwen3-coder:free") == \
        "openrouter/free → qwen3-coder:free"
    assert model_cell(float("nan"), None) == ""
