"""Terminal IPython: text written once, as it arrives; compare and picker as printed text."""

from __future__ import annotations

import io

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from openrouter_nb.api.errors import MinuteRateLimit
from openrouter_nb.api.types import StreamDelta
from openrouter_nb.notebook import terminal
from openrouter_nb.notebook.terminal import ERASE_LINE, TerminalDisplay, is_terminal
from openrouter_nb.session import Session

from .conftest import make_answer as answer


@pytest.fixture
def term(monkeypatch: pytest.MonkeyPatch, ip: InteractiveShell) -> InteractiveShell:
    monkeypatch.setattr(terminal, "FORCE", True)
    return ip


def test_terminal_shell_is_detected() -> None:
    from IPython.terminal.interactiveshell import TerminalInteractiveShell

    assert is_terminal(object.__new__(TerminalInteractiveShell))
    assert is_terminal(None)
    assert not is_terminal(InteractiveShell.instance())

    class Kernelled:
        kernel = object()

    assert not is_terminal(Kernelled())


def test_each_character_is_written_once() -> None:
    out = io.StringIO()
    view = TerminalDisplay(stream=out)
    view.start("openrouter/free")
    for chunk in ("Hel", "lo ", "world", "."):
        view.on_delta(StreamDelta(chunk))
    view.finish(answer("Hello world."))
    assert out.getvalue() == (f"◷ asking openrouter/free…{ERASE_LINE}Hello world.\n\n"
                              f"{answer('Hello world.').footer()}\n")


def test_escape_split_over_chunks_never_reaches_the_terminal() -> None:
    out = io.StringIO()
    view = TerminalDisplay(stream=out)
    for chunk in ("red ", "\x1b", "[31", "mtext \x9b2J", "done", "\x1b]8;;http://x\x07link"):
        view.on_delta(StreamDelta(chunk))
    text = "red \x1b[31mtext \x9b2Jdone\x1b]8;;http://x\x07link"
    view.finish(answer(text))
    written = out.getvalue()
    assert "\x1b[31m" not in written and "\x9b" not in written and "\x07" not in written
    assert written.startswith("red text done")
    assert written.count("red") == 1


def test_status_erased_and_error_printed() -> None:
    out = io.StringIO()
    view = TerminalDisplay(stream=out)
    view.start("m")
    view.fail(MinuteRateLimit("Slow down.", call_id="c9"))
    assert out.getvalue().startswith(f"◷ asking m…{ERASE_LINE}OpenRouter error (rate_limit_minute)")
    assert "Slow down." in out.getvalue()


def test_interrupt_line_in_terminal() -> None:
    out = io.StringIO()
    view = TerminalDisplay(stream=out)
    view.on_delta(StreamDelta("Partial"))
    view.interrupted()
    assert out.getvalue() == ("Partial\n\n■ interrupted — 7 characters kept in the ledger "
                              "(%openrouter log)\n")


def test_magic_streams_to_stdout_in_a_terminal(term: InteractiveShell, session: Session,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENROUTER_NB_STREAM_DISPLAY", "live")
    with capture_output() as cap:
        term.run_cell_magic("openrouter", "-m google/gemma-3-27b-it:free --out a",
                            "Explain SSE in three sentences.")
    got = term.user_ns["a"]
    assert cap.outputs == []  # no mime bundle, no repr
    assert cap.stdout == (f"◷ asking google/gemma-3-27b-it:free…{ERASE_LINE}{got.text}\n\n"
                          f"{got.footer()}\n")


def test_compare_prints_answers_one_after_another(term: InteractiveShell,
                                                  session: Session) -> None:
    models = ["google/gemma-3-27b-it:free", "openai/gpt-oss-20b:free"]
    with capture_output() as cap:
        term.run_cell_magic("openrouter", f"--compare {','.join(models)} --out cmp",
                            "Name one prime.")
    assert cap.outputs == []
    assert "CompareView(" not in cap.stdout
    frame = term.user_ns["cmp"]
    for model in models:
        assert f"── {model}\n" in cap.stdout
    assert cap.stdout.index(models[0]) < cap.stdout.index(models[1])
    for text in frame["text"]:
        assert text.strip()[:40] in cap.stdout


def test_picker_prints_a_table_with_a_hint(term: InteractiveShell, session: Session) -> None:
    with capture_output() as cap:
        term.run_line_magic("openrouter", "picker --vision")
    assert cap.outputs == [] and "ModelPicker(" not in cap.stdout
    lines = cap.stdout.splitlines()
    assert lines[0].split() == ["model", "context", "capabilities"]
    vision = [m.id for m in session.catalog.filter(free=True, vision=True)]
    assert vision and all(any(line[2:].startswith(m + " ") for line in lines) for m in vision)
    assert "To pin one:" in cap.stdout


def test_retry_status_uses_a_plain_symbol() -> None:
    out = io.StringIO()
    view = TerminalDisplay(stream=out)
    view.on_event("retry", {"attempt": 0, "wait_s": 12, "reason": "per-minute limit"})
    assert out.getvalue() == "◷ per-minute limit: waiting 12 s, attempt 1\n"


def test_wait_mark_in_html_needs_no_emoji_font() -> None:
    from openrouter_nb.notebook.display import WAIT_ICON_HTML, status_html

    page = status_html("⏳ waiting 31 s for a free slot (20/minute) <b>")
    assert "⏳" not in page and page.startswith(WAIT_ICON_HTML)
    assert page.endswith("waiting 31 s for a free slot (20/minute) &lt;b&gt;")
