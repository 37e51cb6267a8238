"""Batch progress tells answered, failed and not sent apart; every widget has an HTML fallback."""

from __future__ import annotations

import re

from openrouter_nb.api.errors import ModelUnavailableError
from openrouter_nb.batching import BatchProgress
from openrouter_nb.notebook.compare_view import CompareView
from openrouter_nb.notebook.picker import ModelPicker
from openrouter_nb.notebook.progress import BatchProgressBar, summary
from openrouter_nb.notebook.widgets import QuotaMeter
from openrouter_nb.session import Session

STOP = ("Stopped at row 21 of 30: Daily free-model limit reached (50/day). It resets at 00:00 "
        "UTC. Run the same call again to resume; answered rows are kept.")


def stopped() -> BatchProgress:
    # 20 answered, 1 failed (the daily 429), 9 never sent
    return BatchProgress("b-1", 21, 30, 0, 1, 0, None, STOP, True)


def test_a_stopped_batch_never_says_30_of_30() -> None:
    bar = BatchProgressBar()
    bar.update(stopped())
    assert repr(bar) == "BatchProgressBar(20/30 rows answered, 1 failed, 9 not sent)"
    assert summary(stopped()) == ("20 answered · 1 failed · 9 not sent · of 30 rows · "
                                  "0 free requests left today")
    assert "30/30" not in bar.label.value and "9 not sent" in bar.label.value
    widths = re.findall(r'title="(\d+) ([a-z ]+)" style="width:([\d.]+)%', bar.strip.value)
    assert widths == [("20", "answered", "66.667"), ("1", "failed", "3.333")]


def test_the_bar_keeps_its_width_with_a_long_message() -> None:
    bar = BatchProgressBar()
    bar.update(stopped())
    assert bar.strip.layout.flex == "0 0 auto" and bar.strip.layout.width == "248px"
    assert "min-width:240px" in bar.strip.value and "flex:none" in bar.strip.value
    assert bar.label.layout.min_width == "0"
    assert "white-space:normal" in bar.label.value  # the message wraps under the counts


def test_resumed_rows_count_as_answered_and_say_so() -> None:
    state = BatchProgress("b-1", 30, 30, 12, 0, 38, None, "", True)
    assert summary(state).startswith("30 answered (12 from the ledger) · of 30 rows")
    bar = BatchProgressBar()
    bar.update(state)
    assert repr(bar) == "BatchProgressBar(30/30 rows answered, 12 from the ledger)"


def test_progress_html_fallback() -> None:
    bar = BatchProgressBar()
    bar.update(stopped())
    bundle = bar._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert "9 not sent" in bundle["text/html"] and bundle["text/plain"] == repr(bar)


def test_compare_html_fallback_escapes_model_text(session: Session) -> None:
    answer = session.ask("Name one prime.", "google/gemma-3-27b-it:free")
    answer.text = "<script>alert(1)</script> **7**"
    error = ModelUnavailableError("No such model <b>x</b>.", call_id="c1")
    view = CompareView(["google/gemma-3-27b-it:free", "nobody/x:free"], [answer, error])
    page = view._repr_mimebundle_()["text/html"]
    assert page.count("orn-compare-answer") == 2 and "grid-template-columns:repeat(2" in page
    assert "<script>" not in page and "&lt;script&gt;" in page and "<strong>7</strong>" in page
    assert "<b>x</b>" not in page and "error: model_unavailable" in page
    assert "line-height:1.4" in page  # not double-spaced


def test_picker_html_fallback(session: Session) -> None:
    picker = ModelPicker(session, vision=True)
    page = picker._repr_mimebundle_()["text/html"]
    for model in picker.models:
        assert f"<code>{model.id}</code>" in page
    assert "-m MODEL" in page and "with vision" in page


def test_meter_html_fallback(session: Session) -> None:
    session.ask("hi", "google/gemma-3-27b-it:free")
    meter = QuotaMeter(session, autostart=False, fetch_key=False)
    try:
        page = meter._repr_mimebundle_()["text/html"]
        state = session.quota_state()
        assert f"<td>{state.minute_used}/{state.minute_limit}</td>" in page
        assert f"<td>{state.day_used}/{state.day_limit}</td>" in page
        assert "a snapshot" in page
    finally:
        meter.close()


def test_models_table_keeps_ids_on_one_line(ip: object, session: Session) -> None:
    from IPython.utils.capture import capture_output

    with capture_output():
        frame = ip.run_line_magic("openrouter", "models")  # type: ignore[attr-defined]
    page = frame._repr_html_()
    assert '<table border="1" class="dataframe" style="white-space:nowrap">' in page
    assert "google/gemma-3-27b-it:free" in page
    assert type(frame[["id"]]).__name__ == "DataFrame"  # selections are plain DataFrames


def test_key_entry_html_fallback_says_what_to_do() -> None:
    from openrouter_nb.notebook.widgets import KeyEntry

    entry = KeyEntry()
    bundle = entry._repr_mimebundle_()
    assert "OPENROUTER_API_KEY" in bundle["text/html"] and "sk-or" not in bundle["text/html"]
    assert bundle["text/plain"] == "KeyEntry(waiting for a key)"
