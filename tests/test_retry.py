"""The retry policy on its own: which errors are retried, how long it waits, when it stops."""

from __future__ import annotations

import random
from typing import Any

import pytest

from openrouter_nb.api import errors as E
from openrouter_nb.api.parse import error_from_body
from openrouter_nb.retry import RetryPolicy

IN_FLIGHT_META = {"reason": "in_flight_budget_exhausted",
                  "limit_source": "openrouter_in_flight_budget"}
TRANSIENT: dict[str, tuple[int, str, dict[str, Any] | None]] = {
    "in_flight_402": (402, "This request would exceed your available credits given your current "
                      "in-flight requests.", IN_FLIGHT_META),
    "edge_timeout_524": (524, "Request timed out. Please try again later.", None),
    "overloaded_529": (529, "Provider returned error", {"raw": "Overloaded",
                                                        "provider_name": "Chutes"}),
}


def _error(name: str, retry_after: str | None = None) -> E.OpenRouterError:
    status, message, metadata = TRANSIENT[name]
    error: dict[str, Any] = {"code": status, "message": message}
    if metadata:
        error["metadata"] = metadata
    headers = {"Retry-After": retry_after} if retry_after else {}
    return error_from_body({"error": error}, http_status=status, headers=headers)


def _policy() -> RetryPolicy:
    return RetryPolicy(retries=2, backoff_base_s=1.0, jitter=0.0, rng=random.Random(0))


@pytest.mark.parametrize("name", sorted(TRANSIENT))
def test_transient_errors_retry_honouring_retry_after(name: str) -> None:
    policy = _policy()
    decision = policy.decide(_error(name, "5"), retries_used=0, has_fallback=False, now=0.0)
    assert (decision.action, decision.wait_s) == ("retry", 5.0)
    # A Retry-After longer than the cap is bounded; backoff wins when it is longer.
    capped = policy.decide(_error(name, "3600"), retries_used=0, has_fallback=False, now=0.0)
    assert capped.wait_s == policy.minute_wait_max_s
    later = policy.decide(_error(name, "1"), retries_used=2 - 1, has_fallback=False, now=0.0)
    assert later.wait_s == 2.0  # second retry: 1 s * 2
    assert policy.decide(_error(name, "5"), retries_used=2, has_fallback=False,
                         now=0.0).action == "stop"


@pytest.mark.parametrize("name", sorted(TRANSIENT))
def test_without_retry_after_the_backoff_is_exponential(name: str) -> None:
    policy = _policy()
    waits = [policy.decide(_error(name), retries_used=n, has_fallback=False, now=0.0).wait_s
             for n in range(2)]
    assert waits == [1.0, 2.0]


def test_in_flight_402_retries_the_same_model_even_with_a_fallback() -> None:
    policy = _policy()
    assert policy.decide(_error("in_flight_402", "2"), retries_used=0, has_fallback=True,
                         now=0.0).action == "retry"
    for name in ("edge_timeout_524", "overloaded_529"):  # model-level: the fallback is next
        assert policy.decide(_error(name), retries_used=0, has_fallback=True,
                             now=0.0).action == "fallback"


def test_insufficient_credits_402_stops_at_once() -> None:
    plain = error_from_body({"error": {"code": 402, "message": "Insufficient credits. Add more "
                                       "using https://openrouter.ai/credits"}},
                            http_status=402, headers={"Retry-After": "2"})
    decision = _policy().decide(plain, retries_used=0, has_fallback=True, now=0.0)
    assert decision.action == "stop" and "credits" in decision.reason
