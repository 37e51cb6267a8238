"""Widgets without a browser: ipywidgets state through comm.DummyComm, clocks injected."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import openrouter_nb as orn
from openrouter_nb import config
from openrouter_nb.api.errors import AuthError
from openrouter_nb.notebook.widgets import (
    KeyEntry,
    QuotaMeter,
    bar_style,
    countdown_text,
    quota_meter,
)
from openrouter_nb.session import Session, get_session, set_session


class FakeTime:
    """A clock that only moves when slept on (or told to)."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))
        self.slept: list[float] = []
        self.on_sleep: list[object] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        for hook in self.on_sleep:
            hook()  # type: ignore[operator]
        self.now += seconds


@pytest.fixture
def fake() -> FakeTime:
    return FakeTime()


@pytest.fixture
def session(tmp_path: Path, fake: FakeTime) -> Iterator[Session]:
    new = Session(home=tmp_path, sandbox=True, clock=fake.clock, sleep=fake.sleep, rpm=2)
    old = set_session(new)
    yield new
    set_session(old)
    new.close()


@pytest.fixture
def meter(session: Session) -> Iterator[QuotaMeter]:
    m = QuotaMeter(session, autostart=False)
    yield m
    m.close()


def test_bar_style_levels() -> None:
    assert [bar_style(u, 10) for u in (0, 6, 7, 8, 9, 10, 12)] == [
        "success", "success", "warning", "warning", "danger", "danger", "danger"]
    assert bar_style(0, 0) == "danger"


def test_meter_updates_after_a_call(meter: QuotaMeter, session: Session) -> None:
    assert meter.minute_bar.value == 0 and meter.day_bar.value == 0
    assert meter.tier == "free tier"
    answer = session.ask("hello")
    assert meter.minute_bar.value == 1 and meter.minute_bar.max == 2
    assert meter.minute_label.value == "1/2" and meter.minute_bar.bar_style == "success"
    assert meter.day_bar.value == 1 and meter.day_label.value == "1/50"
    assert meter.model_label.value == f"last model: {answer.model}"
    state = meter.minute_bar.get_state()
    assert state["value"] == 1 and state["max"] == 2
    session.ask("again")
    assert meter.minute_bar.bar_style == "danger" and meter.minute_label.value == "2/2"


def test_meter_shows_waiting(meter: QuotaMeter, session: Session, fake: FakeTime) -> None:
    seen: list[tuple[str, int]] = []
    fake.on_sleep.append(lambda: seen.append((meter.waiting_label.value,
                                              meter.minute_bar.value)))
    session.ask("one")
    fake.now += 10
    session.ask("two")
    session.ask("three")  # the window holds 2: waits ~50 s for a slot
    # ~50.3 s (the window plus a small margin), counted down as the wait is slept second by second
    assert seen and seen[0][1] == 2
    assert [text for text, _ in seen[:3]] == [
        "waiting 51 s for a free slot (2/minute)", "waiting 50 s for a free slot (2/minute)",
        "waiting 49 s for a free slot (2/minute)"]
    assert meter.waiting_label.value == ""
    assert meter.waiting_label.layout.display == "none"


def test_countdown_ticks_with_injected_clock(meter: QuotaMeter, session: Session,
                                             fake: FakeTime) -> None:
    session.ask("hello")
    assert meter.reset_label.value == "minute window: next slot in 1:00"
    before = repr(meter)
    meter.tick(fake.now + 15)
    assert meter.reset_label.value == "minute window: next slot in 0:45"
    meter.tick(fake.now + 59)
    assert meter.reset_label.value == "minute window: next slot in 0:01"
    assert repr(meter) == before
    fake.now += 61
    meter.tick()
    assert meter.minute_bar.value == 0
    assert meter.reset_label.value.startswith("daily reset in ")
    assert meter.reset_label.value.endswith("(00:00 UTC)")


def test_countdown_text_midnight() -> None:
    from openrouter_nb.quota import QuotaState

    state = QuotaState(minute_used=0, minute_limit=20, minute_reset_at=None, day_used=0,
                       day_limit=50, day_reset_at=86400.0, now=0.0)
    assert countdown_text(state, 86400.0 - 3725) == "daily reset in 1:02:05 (00:00 UTC)"


def test_repr_is_deterministic(meter: QuotaMeter, session: Session) -> None:
    assert repr(meter) == "QuotaMeter(minute 0/2, today 0/50, sandbox)"
    session.ask("hello")
    session.budget = 5
    session.quota.note_budget(5, 1)
    assert repr(meter) == "QuotaMeter(minute 1/2, today 1/50, sandbox, budget 1/5)"
    assert meter._repr_mimebundle_()["text/plain"] == repr(meter)
    assert meter.budget_label.value == "budget: 1/5 requests"


def test_note_when_sources_disagree(meter: QuotaMeter, session: Session) -> None:
    from openrouter_nb.api.types import KeyInfo

    session.quota.note_key(KeyInfo(label=None, is_free_tier=True, daily_used=7, daily_limit=50,
                                   daily_remaining=43, usage=0.0, limit=None))
    assert meter.day_label.value == "7/50"
    assert meter.note_label.value == (
        "OpenRouter counts 7 free requests today, 7 more than this computer sent: another "
        "notebook, program or computer uses the same account.")
    assert session.quota.state().sources["day_used"] == "OpenRouter (/key)"


def test_key_unavailable(session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail() -> None:
        raise AuthError("no key")

    monkeypatch.setattr(session, "key_info", fail)
    m = QuotaMeter(session, autostart=False)
    assert m.tier == "/key unavailable" and "/key unavailable" in m.title.value
    m.close()


def test_one_meter_per_session(session: Session) -> None:
    first = quota_meter(session, autostart=False)
    assert quota_meter(session) is first
    following = orn.quota_meter()  # the meter that follows the default session
    assert following is not first and orn.quota_meter() is following
    first.close()
    following.close()
    second = quota_meter(session, autostart=False)
    assert second is not first
    second.close()


def test_ticker_thread_starts_and_stops(meter: QuotaMeter, fake: FakeTime) -> None:
    meter.start(interval=0.01)
    assert meter._thread is not None and meter._thread.daemon
    fake.now += 5
    deadline = time.monotonic() + 2
    while meter.reset_label.value.startswith("daily reset in") and time.monotonic() < deadline:
        time.sleep(0.01)
    meter.stop()
    assert meter._thread is None and meter.last_error is None


def test_key_entry_sets_memory_key_and_clears_field(session: Session) -> None:
    key = "sk-or-v1-" + "ef" * 32
    entry = KeyEntry()
    try:
        entry.password.value = key
        entry.button.click()
        assert config.memory_key() == key
        assert entry.password.value == "" and entry.password.get_state()["value"] == ""
        assert get_session() is not session  # the default session was reset
        assert entry.status.value.startswith(f"key set (sk-or-…{key[-4:]}), kept in memory only")
        state = json.dumps([w.get_state() for w in (entry, entry.password, entry.status)],
                           default=str)
        assert key not in state and key not in repr(entry)
        assert repr(entry) == "KeyEntry(key set)"
        assert entry.submit("  ") is False and entry.status.value == "no key entered"
    finally:
        config.set_memory_key(None)
