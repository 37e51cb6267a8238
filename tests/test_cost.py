"""The cost of moving logged free calls to a paid route, checked by hand."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import openrouter_nb as orn
from openrouter_nb.session import Session, set_session

FREE = "google/gemma-3-27b-it:free"
PAID = "google/gemma-3-27b-it"


def test_estimate_matches_a_hand_computation(make_session: Callable[..., Session]) -> None:
    session = make_session()
    answers = [session.ask(f"question {n}", FREE) for n in range(3)]
    paid = session.catalog.get(PAID)
    assert paid is not None and paid.prompt_price and paid.completion_price
    by_hand = [a.usage["prompt_tokens"] * paid.prompt_price
               + a.usage["completion_tokens"] * paid.completion_price for a in answers]
    estimate = session.estimate_cost(FREE)  # a free id: priced at its paid twin
    assert estimate.priced_as == PAID and "paid twin" in estimate.note
    assert [c.cost_usd for c in estimate.calls] == pytest.approx(by_hand)
    assert estimate.total_usd == pytest.approx(sum(by_hand))
    assert estimate.per_1000_calls_usd == pytest.approx(sum(by_hand) / 3 * 1000)
    frame = estimate.frame()
    assert list(frame["call_id"]) == [a.call_id for a in answers]
    assert "per 1,000 calls" in str(estimate)


def test_failed_calls_are_not_priced(make_session: Callable[..., Session]) -> None:
    session = make_session()
    session.ask("ok", FREE)
    session.sandbox.queue_fault("provider_502")
    with pytest.raises(orn.ProviderError):
        session.ask("fails", FREE)
    assert len(session.estimate_cost(PAID).calls) == 1


def test_unknown_and_router_models_are_refused(make_session: Callable[..., Session]) -> None:
    session = make_session()
    with pytest.raises(KeyError, match="not in the model catalog"):
        session.estimate_cost("nobody/nothing")
    with pytest.raises(KeyError, match="no fixed per-token price"):
        session.estimate_cost("openrouter/auto")


def test_public_function_takes_a_ledger_frame(make_session: Callable[..., Session]) -> None:
    session = make_session()
    old = set_session(session)
    try:
        session.ask("one", FREE)
        session.ask("two", FREE)
        frame = orn.log()
        assert len(orn.estimate_cost(PAID, frame.iloc[:1]).calls) == 1
        assert len(orn.estimate_cost(PAID).calls) == 2
    finally:
        set_session(old)
