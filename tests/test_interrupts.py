"""Kernel -> Interrupt during a streamed answer: a ledger row, a clean output, a usable kernel.

The interrupt is a real ``KeyboardInterrupt`` raised mid-stream from the display callback (where
SIGINT lands while the in-process sandbox streams), not a mock of our own code.
"""

from __future__ import annotations

from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from openrouter_nb.notebook import display as display_module
from openrouter_nb.notebook.magics import Interrupted, OpenRouterMagics
from openrouter_nb.session import Session

PROMPT = "Write 1,500 words on the history of the printing press."


class InterruptingTarget:
    """Records bundles; raises KeyboardInterrupt at the ``after``-th live update."""

    def __init__(self, after: int = 3) -> None:
        self.after = after
        self.bundles: list[dict[str, str]] = []
        self.armed = True

    def show(self, bundle: dict[str, str], *, updatable: bool) -> None:
        self.bundles.append(bundle)

    def update(self, bundle: dict[str, str]) -> None:
        self.bundles.append(bundle)
        if self.armed and len(self.bundles) > self.after:
            self.armed = False
            raise KeyboardInterrupt


class Steps:
    """A clock one second further on every read: every delta may update the view."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


@pytest.fixture
def live(monkeypatch: pytest.MonkeyPatch, ip: InteractiveShell) -> InterruptingTarget:
    monkeypatch.setenv(display_module.STREAM_ENV, "live")
    target = InterruptingTarget()
    monkeypatch.setattr(OpenRouterMagics, "target_factory", lambda self: target)
    monkeypatch.setattr(OpenRouterMagics, "clock", Steps())
    return target


def last_row(session: Session) -> Any:
    return session.ledger.dataframe(limit=1, newest_first=True, columns="all").iloc[0]


def test_interrupt_keeps_row_and_finishes_view(ip: InteractiveShell, session: Session,
                                               live: InterruptingTarget) -> None:
    with capture_output() as cap:
        result = ip.run_cell(f"%%openrouter -m google/gemma-3-27b-it:free\n{PROMPT}")
    assert isinstance(result.error_in_exec, Interrupted)
    assert isinstance(result.error_in_exec, KeyboardInterrupt)  # Run All stops here
    row = last_row(session)
    assert row["status"] == "interrupted" and row["error_kind"] == "interrupted"
    partial = row["response"]
    assert partial and PROMPT not in partial
    assert row["latency_s"] >= 0
    final = live.bundles[-1]
    note = f"■ interrupted — {len(partial):,} characters kept in the ledger (%openrouter log)"
    assert final["text/plain"] == f"{partial}\n\n{note}"
    assert "▌" not in final["text/plain"] and "▌" not in final["text/html"]
    assert note in final["text/html"]
    # one line instead of ~40 frames of httpx and sandbox internals
    assert cap.stdout == (f"KeyboardInterrupt: stopped after {len(partial):,} characters; the row "
                          "is in %openrouter log\n")
    assert "httpx" not in cap.stdout and "Traceback" not in cap.stdout


def test_after_an_interrupt_the_slot_is_settled_and_the_kernel_answers(
        ip: InteractiveShell, session: Session, live: InterruptingTarget) -> None:
    with capture_output():
        ip.run_cell(f"%%openrouter -m google/gemma-3-27b-it:free\n{PROMPT}")
    state = session.quota_state()
    assert state.minute_used == 1 and state.day_used == 1 and state.waiting_s == 0
    with capture_output():
        result = ip.run_cell("%%openrouter -m google/gemma-3-27b-it:free --out after\nSay hi.")
    assert result.error_in_exec is None
    assert ip.user_ns["after"].text
    assert session.quota_state().minute_used == 2
    statuses = list(session.ledger.dataframe(newest_first=True)["status"])
    assert statuses == ["ok", "interrupted"]


def test_interrupted_note_counts_characters() -> None:
    assert display_module.interrupted_note(1) == \
        "■ interrupted — 1 character kept in the ledger (%openrouter log)"
    bundle = display_module.interrupted_bundle("", "markdown")
    assert bundle["text/plain"] == \
        "■ interrupted — 0 characters kept in the ledger (%openrouter log)"
    hostile = display_module.interrupted_bundle("<script>x</script>\x1b[31m", "markdown")
    assert "<script>" not in hostile["text/html"] and "\x1b" not in hostile["text/plain"]
