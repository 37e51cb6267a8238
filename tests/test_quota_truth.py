"""One source of quota truth per mode: the sandbox continues the day from the ledger, so
footers, the meter, the sandbox's ``/key`` and the ledger agree, across sessions and kernels;
sandbox and live attempts never count against each other; a per-day block is re-checked
with ``/key`` and never hides another error."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

import openrouter_nb as orn
from openrouter_nb.quota import KEY_RECHECK_S, utc_midnight_before
from openrouter_nb.sandbox import SandboxServer
from openrouter_nb.session import Session, set_session

from .conftest import FakeClock

MODEL = "meta-llama/llama-3.3-70b-instruct:free"


def day_count(session: Session) -> int:
    return session.ledger.count_attempts(since=utc_midnight_before(session.clock()),
                                         account=session.account)


def figures(session: Session) -> tuple[int, int, int, int]:
    """(tracker, sandbox quota, sandbox /key, ledger) for today's used requests."""
    key = session.key_info().daily_used
    assert key is not None and session.sandbox is not None
    return (session.quota.state().day_used, session.sandbox.quota.daily(session._key or "")[
        "used"], key, day_count(session))


def chat_requests(session: Session) -> int:
    assert session.sandbox is not None
    return sum(1 for r in session.sandbox.requests if r.path.endswith("/chat/completions"))


def test_a_new_session_continues_the_sandbox_day(make_session: Callable[..., Session]) -> None:
    first = make_session()
    for n in range(3):
        first.ask(f"question {n}", MODEL)
    assert figures(first) == (3, 3, 3, 3)
    second = make_session()  # a new kernel would build exactly this: same home, new emulator
    assert figures(second) == (3, 3, 3, 3)
    answer = second.ask("one more", MODEL)
    assert answer.day_remaining == 46
    assert figures(second) == (4, 4, 4, 4)


def test_a_derived_session_continues_too(make_session: Callable[..., Session]) -> None:
    session = make_session()
    session.ask("hello", MODEL)
    derived = session.derive(model=MODEL)
    assert derived.sandbox is not session.sandbox
    assert figures(derived) == (1, 1, 1, 1)


def test_sandbox_and_live_never_count_against_each_other(
        make_session: Callable[..., Session], server: SandboxServer) -> None:
    sandbox = make_session()
    for n in range(2):
        sandbox.ask(f"sandbox {n}", MODEL)
    live = make_session(loopback=server, key_name="quota-truth-live")
    assert live.account != sandbox.account
    assert live.quota.state().day_used == 0
    live.ask("live one", MODEL)
    assert live.quota.state().day_used == 1
    assert sandbox.quota.state().day_used == 2
    again = make_session().sandbox
    assert again is not None and again.quota.daily(sandbox._key or "")["used"] == 2


def test_the_seeded_day_never_exceeds_the_limit(make_session: Callable[..., Session]) -> None:
    rich = make_session(sandbox_options={"credits": 10})  # 1000/day
    for n in range(4):
        rich.ask(f"question {n}", MODEL)
    poor = make_session(sandbox_options={"rpd": 3})
    assert poor.sandbox is not None and poor.sandbox.quota.daily(poor._key or "") == {
        "used": 3, "limit": 3, "remaining": 0}
    state = poor.quota_state()
    assert state.day_used <= state.day_limit
    with pytest.raises(orn.DailyRateLimit):
        poor.ask("over the limit", MODEL)
    state = poor.quota_state()
    assert (state.day_used, state.day_limit, state.day_remaining) == (3, 3, 0)


def test_a_day_429_row_does_not_count(make_session: Callable[..., Session]) -> None:
    session = make_session(sandbox_options={"rpd": 2})
    session.ask("one", MODEL)
    session.ask("two", MODEL)
    with pytest.raises(orn.DailyRateLimit):
        session.ask("three", MODEL)
    assert day_count(session) == 2  # the refused request is a row, but not a used request
    assert figures(session)[1:] == (2, 2, 2)


def test_a_fresh_key_read_lifts_a_local_day_block(make_session: Callable[..., Session],
                                                  clock: FakeClock) -> None:
    session = make_session(clock=clock, sleep=clock.sleep)
    assert session.sandbox is not None
    session.sandbox.queue_fault("rate_limit_day")  # a 429 per-day although requests are left
    with pytest.raises(orn.DailyRateLimit):
        session.ask("first", MODEL)
    assert session.quota_state().day_blocked
    keys_before = sum(r.path.endswith("/key") for r in session.sandbox.requests)
    answer = session.ask("second", MODEL)  # /key says 50 left: the block is lifted, it is sent
    assert answer.text and not session.quota_state().day_blocked
    assert sum(r.path.endswith("/key") for r in session.sandbox.requests) == keys_before + 1


def test_a_real_day_block_reads_key_at_most_once_a_minute(
        make_session: Callable[..., Session], clock: FakeClock) -> None:
    session = make_session(clock=clock, sleep=clock.sleep, sandbox_options={"rpd": 1})
    assert session.sandbox is not None
    session.ask("the one request", MODEL)
    with pytest.raises(orn.DailyRateLimit):
        session.ask("refused by OpenRouter", MODEL)
    sent = chat_requests(session)

    def key_reads() -> int:
        assert session.sandbox is not None
        return sum(r.path.endswith("/key") for r in session.sandbox.requests)

    for _ in range(3):
        with pytest.raises(orn.DailyRateLimit, match="not sending"):
            session.ask("refused here", MODEL)
    assert key_reads() == 1 and chat_requests(session) == sent
    clock.now += KEY_RECHECK_S
    with pytest.raises(orn.DailyRateLimit, match="not sending"):
        session.ask("a minute later", MODEL)
    assert key_reads() == 2 and chat_requests(session) == sent


def test_credits_bought_mid_day_lift_the_block(make_session: Callable[..., Session],
                                               clock: FakeClock) -> None:
    session = make_session(clock=clock, sleep=clock.sleep, sandbox_options={"rpd": 1})
    assert session.sandbox is not None
    session.ask("the one request", MODEL)
    with pytest.raises(orn.DailyRateLimit):
        session.ask("refused by OpenRouter", MODEL)
    session.sandbox.quota.rpd = 1000  # 10 credits bought: the account's tier changes
    answer = session.ask("after buying credits", MODEL)
    assert answer.day_remaining == 1000 - 2
    assert session.quota_state().day_limit == 1000


def test_the_day_block_never_hides_an_unknown_model(make_session: Callable[..., Session]
                                                    ) -> None:
    session = make_session(sandbox_options={"rpd": 1})
    session.ask("the one request", MODEL)
    with pytest.raises(orn.DailyRateLimit):
        session.ask("refused by OpenRouter", MODEL)
    sent = chat_requests(session)
    with pytest.raises(orn.ModelUnavailableError, match="Unknown model id") as info:
        session.ask("hello", "nobody/no-such-model:free")
    assert info.value.reason == "unknown_model"
    assert chat_requests(session) == sent  # the catalog said so: nothing was sent
    row = session.ledger.rows(newest_first=True, limit=1)[0]
    assert row["error_kind"] == "model_unavailable" and row["http_status"] is None
    with pytest.raises(orn.DailyRateLimit, match="not sending"):
        session.ask("a known model is still refused", MODEL)


# -- the meter follows the default session ---------------------------------------------------------
@pytest.fixture
def shell(session: Session) -> Iterator[InteractiveShell]:
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "openrouter_nb")
    yield ip
    InteractiveShell.clear_instance()


def run(ip: InteractiveShell, body: str, line: str = "") -> str:
    with capture_output() as cap:
        ip.run_cell_magic("openrouter", line, body)
    return str(cap.outputs[-1].data["text/plain"])


def test_the_meter_follows_session_swaps(shell: InteractiveShell, session: Session) -> None:
    from openrouter_nb.notebook.widgets import quota_meter

    meter = quota_meter(autostart=False)
    pinned = quota_meter(session, autostart=False)
    try:
        assert "1 free requests left today" not in run(shell, "first")
        with capture_output():
            shell.run_line_magic("openrouter", "sandbox on")  # a new default session
        current = orn.get_session()
        assert current is not session
        footer = run(shell, "second")
        assert "48 free requests left today" in footer
        assert repr(meter) == "QuotaMeter(minute 2/20, today 2/50, sandbox)"
        assert meter.day_label.value == "2/50" and meter.note_label.value == ""
        assert "no longer the one your calls use" in pinned.note_label.value
        assert repr(pinned).endswith(", detached)")
        previous = set_session(None)  # reset: the meter waits for the next session
        assert "as soon as the next call starts it" in meter.note_label.value
        run(shell, "third")  # a new session from the environment (its own home)
        fresh = orn.get_session().quota_state()
        assert meter.day_label.value == f"{fresh.day_used}/50" and meter.note_label.value == ""
        assert meter.model_label.value == f"last model: {fresh.last_model}"
        orn.get_session().close()
        set_session(previous)
        if previous is not None and previous is not session:
            previous.close()
    finally:
        meter.close()
        pinned.close()


def test_meter_notes_are_plain_sentences(make_session: Callable[..., Session]) -> None:
    from openrouter_nb.notebook.widgets import QuotaMeter

    session = make_session()
    meter = QuotaMeter(session, autostart=False)
    try:
        for n in range(3):
            session.ask(f"question {n}", MODEL)
        assert meter.note_label.value == ""  # the sandbox's /key agrees: nothing to explain
        assert meter.day_label.value == "3/50"
    finally:
        meter.close()


# -- two kernels, one after the other, on one home ---------------------------------------------------
KERNEL = r"""
import json, re
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
import openrouter_nb as orn
from openrouter_nb.quota import utc_midnight_before

ip = InteractiveShell.instance()
ip.run_line_magic("load_ext", "openrouter_nb")
footers = []
for n in range(3):
    with capture_output() as cap:
        ip.run_cell_magic("openrouter", "-m meta-llama/llama-3.3-70b-instruct:free",
                          f"Kernel question {n}?")
    text = cap.outputs[-1].data["text/plain"]
    footers.append(int(re.search(r"(\d+) free requests left today", text).group(1)))
with capture_output() as cap:
    ip.run_line_magic("openrouter", "quota")
session = orn.get_session()
print(json.dumps({
    "footers": footers,
    "meter": repr(orn.quota_meter()),
    "key": session.key_info().daily_used,
    "ledger": session.ledger.count_attempts(since=utc_midnight_before(session.clock()),
                                            account=session.account),
    "shown": cap.outputs[-1].data["text/plain"] if cap.outputs else "",
}))
"""


def test_two_kernels_one_after_the_other_agree(tmp_path: Path) -> None:
    env = {**os.environ, "OPENROUTER_NB_HOME": str(tmp_path), "OPENROUTER_NB_SANDBOX": "1",
           "OPENROUTER_NB_STREAM_DISPLAY": "final"}
    results = []
    for _ in range(2):
        done = subprocess.run([sys.executable, "-c", KERNEL], env=env, check=True, timeout=120,
                              capture_output=True, text=True)
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    first, second = results
    assert first["footers"] == [49, 48, 47]
    assert second["footers"] == [46, 45, 44]  # the second kernel continues the day
    for result, used in ((first, 3), (second, 6)):
        assert result["key"] == used and result["ledger"] == used
        assert re.search(rf"today {used}/50, sandbox\)", result["meter"]), result["meter"]
        assert result["shown"] == result["meter"]


# -- the cell itself counts down a pacing wait -----------------------------------------------------
def test_the_cell_counts_down_while_waiting_for_a_slot(make_session: Callable[..., Session],
                                                        clock: FakeClock) -> None:
    from openrouter_nb.notebook.display import StreamingDisplay

    from .test_display import Recorder

    session = make_session(clock=clock, sleep=clock.sleep, rpm=1, sandbox_options={"rpm": 1})
    session.ask("fills the minute", MODEL)
    clock.now += 29
    target = Recorder()
    view = StreamingDisplay(live=True, target=target, clock=lambda: 0.0)
    view.start(MODEL)
    unsubscribe = session.quota.subscribe(view.on_quota)
    try:
        answer = session.ask("waits", MODEL, on_delta=view.on_delta, on_event=view.on_event)
    finally:
        unsubscribe()
    view.finish(answer)
    lines = [b["text/plain"] for b in target.updates if "waiting" in b["text/plain"]]
    assert lines[0] == "⏳ waiting 32 s for a free slot (1/minute)"  # 31 s + the safety margin
    assert lines[1] == "⏳ waiting 31 s for a free slot (1/minute)"
    seconds = [int(text.split()[2]) for text in lines]
    assert seconds == list(range(32, 32 - len(seconds), -1))  # once a second, down to the end
    assert seconds[-1] <= 2
    assert "waiting" not in target.updates[-1]["text/plain"]  # the answer replaced it
