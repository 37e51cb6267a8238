"""Retries, fallbacks, budgets, pacing and bad input, through Session and the sandbox.

A fake clock drives both the session and the in-process sandbox, so waits are asserted
exactly and nothing sleeps for real.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import openrouter_nb as orn
from openrouter_nb.sandbox import SandboxServer, sandbox_key
from openrouter_nb.session import Session

from .conftest import FakeClock

MODEL = "meta-llama/llama-3.3-70b-instruct:free"
OTHER = "google/gemma-3-27b-it:free"


def chat_requests(session: Session) -> int:
    return sum(1 for r in session.sandbox.requests if r.path.endswith("/chat/completions"))


def test_minute_429_waits_until_reset_then_retries(make_session: Callable[..., Session],
                                                   clock: FakeClock) -> None:
    session = make_session(clock=clock, sleep=clock.sleep, retries=2)
    session.sandbox.queue_fault("rate_limit_minute")
    answer = session.ask("hi", MODEL)
    assert answer.attempts == 2
    rows = session.ledger.rows(call_id=answer.call_id)
    assert [(r["attempt"], r["status"], r["error_kind"]) for r in rows] == [
        (1, "error", "rate_limit_minute"), (2, "ok", None)]
    # It waited for the X-RateLimit-Reset the 429 named (epoch ms -> seconds), not a guess.
    assert clock.slept and 0 < clock.slept[0] <= 61


def test_day_429_is_never_retried_and_blocks_until_reset(make_session: Callable[..., Session],
                                                         clock: FakeClock) -> None:
    session = make_session(clock=clock, sleep=clock.sleep, retries=3,
                           sandbox_options={"rpd": 1})
    session.ask("the day's one request", MODEL)
    with pytest.raises(orn.DailyRateLimit) as info:
        session.ask("hi", MODEL)
    assert info.value.attempts == 1 and clock.slept == []
    sent = chat_requests(session)
    with pytest.raises(orn.DailyRateLimit, match="not sending"):
        session.ask("again", OTHER)  # another :free model shares the quota
    assert chat_requests(session) == sent  # refused locally: the sandbox saw nothing
    last = session.ledger.rows(newest_first=True, limit=1)[0]
    assert last["error_kind"] == "rate_limit_day" and last["http_status"] is None


def test_upstream_429_backs_off_and_retries(make_session: Callable[..., Session],
                                            clock: FakeClock) -> None:
    session = make_session(clock=clock, sleep=clock.sleep, retries=2)
    session.sandbox.queue_fault("upstream_429", count=2)
    answer = session.ask("hi", MODEL)
    assert answer.attempts == 3
    assert len(clock.slept) == 2 and clock.slept[1] > clock.slept[0] * 1.1  # exponential


def test_retries_are_bounded(make_session: Callable[..., Session], clock: FakeClock) -> None:
    session = make_session(clock=clock, sleep=clock.sleep, retries=2)
    session.sandbox.queue_fault("provider_502", count=5)
    with pytest.raises(orn.ProviderError) as info:
        session.ask("hi", MODEL)
    assert info.value.attempts == 3
    assert len(session.ledger.rows(call_id=info.value.call_id)) == 3


def test_in_flight_402_waits_for_retry_after_on_the_same_model(
        make_session: Callable[..., Session], clock: FakeClock) -> None:
    session = make_session(clock=clock, sleep=clock.sleep, retries=2)
    session.sandbox.queue_fault("in_flight_402")
    answer = session.ask("hi", MODEL, fallback=[OTHER])
    assert (answer.model, answer.fallback, answer.attempts) == (MODEL, None, 2)
    assert clock.slept == [2.0]  # the sandbox's Retry-After: 2 (longer than the 1 s backoff)
    rows = session.ledger.rows(call_id=answer.call_id)
    assert [(r["error_kind"], r["http_status"]) for r in rows] == [("credits", 402), (None, 200)]


def test_in_flight_402_retries_are_bounded(make_session: Callable[..., Session],
                                           clock: FakeClock) -> None:
    session = make_session(clock=clock, sleep=clock.sleep, retries=2)
    session.sandbox.queue_fault("in_flight_402", count=5)
    with pytest.raises(orn.InFlightCredits) as info:
        session.ask("hi", MODEL)
    assert info.value.attempts == 3 and chat_requests(session) == 3
    assert len(clock.slept) == 2 and all(wait >= 2.0 for wait in clock.slept)


@pytest.mark.parametrize(("fault", "kind"), [("edge_timeout_524", "timeout"),
                                             ("overloaded_529", "provider_error")])
def test_edge_timeout_and_overload_back_off_and_retry(
        fault: str, kind: str, make_session: Callable[..., Session], clock: FakeClock) -> None:
    session = make_session(clock=clock, sleep=clock.sleep, retries=2)
    session.sandbox.queue_fault(fault)
    answer = session.ask("hi", MODEL)
    assert answer.attempts == 2 and len(clock.slept) == 1
    rows = session.ledger.rows(call_id=answer.call_id)
    assert [(r["status"], r["error_kind"]) for r in rows] == [("error", kind), ("ok", None)]


def test_a_lagging_key_count_never_lowers_the_meter(make_session: Callable[..., Session],
                                                    clock: FakeClock) -> None:
    session = make_session(clock=clock, sleep=clock.sleep, sandbox_options={"key_cache_s": 60})
    assert session.key_info().daily_used == 0  # the sandbox caches this figure now
    for prompt in ("one", "two"):
        session.ask(prompt, MODEL)
        clock.now += 1
    assert session.key_info().daily_used == 0  # still the cached figure
    state = session.quota.state()
    assert state.day_used == 2 and state.note == ""  # a /key figure behind ours is no news
    clock.now += 60
    assert session.key_info().daily_used == 2


def test_the_day_count_is_exact_when_the_clock_does_not_move(
        make_session: Callable[..., Session], clock: FakeClock) -> None:
    """A coarse clock (Windows ticks every ~16 ms) can stamp a send and the next reading
    alike: each send must still count once."""
    session = make_session(clock=clock, sleep=clock.sleep)
    for expected in (1, 2, 3):
        clock.now += 5  # the ledger's count is read again, at the same time as the send
        session.ask(f"call {expected}", MODEL)
        assert session.quota.state().day_used == expected


@pytest.mark.parametrize("fault", ["auth", "credits_402", "moderation_403"])
def test_not_retryable_kinds_stop_at_once(fault: str, make_session: Callable[..., Session],
                                          clock: FakeClock) -> None:
    session = make_session(clock=clock, sleep=clock.sleep, retries=3)
    session.sandbox.queue_fault(fault)
    with pytest.raises(orn.OpenRouterError) as info:
        session.ask("hi", MODEL)
    assert info.value.attempts == 1 and chat_requests(session) == 1


def test_explicit_fallback_is_labelled(make_session: Callable[..., Session]) -> None:
    session = make_session()
    session.sandbox.queue_fault("no_endpoints_404")
    answer = session.ask("hi", MODEL, fallback=[OTHER])
    assert answer.model == OTHER and answer.fallback == OTHER
    assert f"fallback: requested {MODEL}, answered by {OTHER}" in answer.footer()
    rows = session.ledger.rows(call_id=answer.call_id)
    assert [(r["requested_model"], r["fallback"], r["status"]) for r in rows] == [
        (MODEL, None, "error"), (OTHER, OTHER, "ok")]


def test_without_fallback_nothing_is_substituted(make_session: Callable[..., Session]) -> None:
    session = make_session(retries=3)
    session.sandbox.queue_fault("free_variant_ended_404")
    with pytest.raises(orn.ModelUnavailableError):
        session.ask("hi", MODEL)
    chats = [r for r in session.sandbox.requests if r.path.endswith("/chat/completions")]
    assert [r.json["model"] for r in chats] == [MODEL]
    assert "Free alternatives: " in session.ledger.rows()[-1]["error_message"]


def test_budget_refuses_before_sending(make_session: Callable[..., Session]) -> None:
    session = make_session(budget=2)
    session.ask("one", MODEL)
    session.ask("two", MODEL)
    with pytest.raises(orn.BudgetExceeded, match="budget of 2 requests"):
        session.ask("three", MODEL)
    assert chat_requests(session) == 2
    last = session.ledger.rows(newest_first=True, limit=1)[0]
    assert (last["status"], last["error_kind"], last["prompt"]) == ("error", "budget", "three")
    assert session.quota_state().budget_remaining == 0


def test_failed_attempts_spend_the_budget(make_session: Callable[..., Session],
                                          clock: FakeClock) -> None:
    session = make_session(budget=2, retries=5, clock=clock, sleep=clock.sleep)
    session.sandbox.queue_fault("provider_502", count=5)
    with pytest.raises(orn.BudgetExceeded):
        session.ask("hi", MODEL)
    assert chat_requests(session) == 2


def test_pacing_waits_for_a_slot_instead_of_a_429(make_session: Callable[..., Session],
                                                  clock: FakeClock) -> None:
    session = make_session(clock=clock, sleep=clock.sleep, sandbox_options={"rpm": 3})
    for n in range(7):
        session.ask(f"question {n}", MODEL)
    statuses = [r.status for r in session.sandbox.requests]
    assert statuses == [200] * 7  # never a 429
    assert len(clock.slept) == 2 and all(55 <= s <= 60.5 for s in clock.slept)


def test_paid_models_are_not_paced(make_session: Callable[..., Session],
                                   clock: FakeClock) -> None:
    session = make_session(clock=clock, sleep=clock.sleep, sandbox_options={"rpm": 1})
    for _ in range(3):
        session.ask("q", "meta-llama/llama-3.3-70b-instruct")
    assert clock.slept == []


# -- bad input: a clear error and a ledger row, never an httpx traceback ----------------------------

def test_unknown_model_id(make_session: Callable[..., Session]) -> None:
    session = make_session()
    with pytest.raises(orn.ModelUnavailableError, match="Unknown model id") as info:
        session.ask("hi", "nobody/nothing:free")
    assert session.ledger.rows(call_id=info.value.call_id)[0]["error_kind"] == "model_unavailable"


@pytest.mark.parametrize("prompt", ["", "   \n"])
def test_empty_prompt_is_refused_without_a_request(prompt: str,
                                                    make_session: Callable[..., Session]) -> None:
    session = make_session()
    with pytest.raises(orn.BadRequestError, match="prompt is empty") as info:
        session.ask(prompt)
    assert chat_requests(session) == 0
    assert session.ledger.rows(call_id=info.value.call_id)[0]["error_kind"] == "bad_request"


def test_more_than_three_models_is_refused(make_session: Callable[..., Session]) -> None:
    session = make_session()
    with pytest.raises(orn.BadRequestError, match="At most 3 models"):
        session.ask("hi", MODEL, fallback=[OTHER, "a/b:free", "c/d:free"])
    assert chat_requests(session) == 0


def test_bad_key_over_loopback_never_leaks(server: SandboxServer, tmp_path: Path) -> None:
    secret = sandbox_key("not-registered")[:-4] + "XYZ!"  # malformed: not 64 hex digits
    session = Session(api_key=secret, base_url=server.base_url, sandbox=False, home=tmp_path)
    with pytest.raises(orn.AuthError) as info:
        session.ask("hi", MODEL)
    session.close()
    assert secret not in info.value.message and secret not in repr(info.value)
    assert secret not in repr(session.settings)
    data = b"".join(p.read_bytes() for p in tmp_path.glob("ledger.sqlite*"))
    assert secret.encode() not in data
    assert b"auth" in data  # the row is there


def test_unreachable_base_url(tmp_path: Path) -> None:
    session = Session(api_key=sandbox_key(), base_url="http://127.0.0.1:9/api/v1", sandbox=False,
                      home=tmp_path, timeout=2)
    with pytest.raises(orn.NetworkError, match="Cannot reach 127.0.0.1:9") as info:
        session.ask("hi", MODEL)
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert session.ledger.rows()[0]["error_kind"] == "network"
