"""Every sandbox fault through the whole stack: error kind, message, and the ledger row.

Run over a real loopback HTTP server and over the in-process transport.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

import openrouter_nb as orn
from openrouter_nb.sandbox import FAULTS, SandboxServer
from openrouter_nb.session import Session

MODEL = "meta-llama/llama-3.3-70b-instruct:free"

# fault -> (error kind, a phrase the message must contain: what to do next)
EXPECTED: dict[str, tuple[str, str]] = {
    "rate_limit_minute": ("rate_limit_minute", "Wait a minute"),
    "rate_limit_day": ("rate_limit_day", "resets at 00:00 UTC"),
    "upstream_429": ("upstream_rate_limit", "not your quota"),
    "upstream_429_retry_after": ("upstream_rate_limit", "Retry shortly"),
    "shared_capacity_429": ("upstream_rate_limit", "pick another model"),
    "error_in_200": ("upstream_rate_limit", "not your quota"),
    "provider_502": ("provider_error", "Retry shortly"),
    "service_503": ("provider_error", "Retry shortly"),
    "timeout": ("timeout", "timeout"),
    "request_timeout_408": ("timeout", "Retry"),
    "auth": ("auth", "OPENROUTER_API_KEY"),
    "no_endpoints_404": ("model_unavailable", "Pick another model"),
    "free_variant_ended_404": ("model_unavailable", "has ended"),
    "data_policy_404": ("model_unavailable", "data policy"),
    "moderation_403": ("moderation", "Rephrase"),
    "credits_402": ("credits", "credits"),
    "in_flight_402": ("credits", "in flight"),
    "edge_timeout_524": ("timeout", "edge timed out"),
    "overloaded_529": ("provider_error", "overloaded"),
    "non_json": ("provider_error", "not JSON"),
    "error_in_choices": ("provider_error", "Retry shortly"),
    "midstream_error": ("midstream_error", "partial answer is kept"),
    "midstream_error_done": ("midstream_error", "partial answer is kept"),
    "truncated_stream": ("midstream_error", "ended early"),
    "empty_content": ("provider_error", "empty answer"),
}
STREAMED = {"midstream_error", "midstream_error_done", "truncated_stream"}
#: Faults that are not failures: the answer comes back (tested in test_pipeline.py).
ANSWERED = {"reasoning_only"}


def test_every_fault_has_an_expectation() -> None:
    assert set(EXPECTED) | ANSWERED == set(FAULTS)
    assert not set(EXPECTED) & ANSWERED


@pytest.mark.parametrize("where", ["loopback", "in-process"])
@pytest.mark.parametrize("fault", sorted(EXPECTED))
def test_fault_kind_message_and_ledger_row(
    fault: str, where: str, server: SandboxServer, make_session: Callable[..., Session]
) -> None:
    session = make_session(server if where == "loopback" else None, timeout=0.5)
    kind, phrase = EXPECTED[fault]
    headers = {"X-Sandbox-Fault": fault, "X-Sandbox-Hang-S": "2"}
    with pytest.raises(orn.OpenRouterError) as info:
        session.ask("hello there", MODEL, stream=fault in STREAMED, headers=headers)
    error = info.value
    assert error.kind == kind
    assert phrase.lower() in error.message.lower()
    assert error.call_id and error.attempts == 1
    rows = session.ledger.rows(call_id=error.call_id)
    assert len(rows) == 1
    row = rows[0]
    assert (row["status"], row["error_kind"], row["attempt"]) == ("error", kind, 1)
    assert row["requested_model"] == MODEL and row["prompt"] == "hello there"
    assert row["error_message"] == error.message
    if fault in STREAMED:
        assert row["response"] and error.partial_text == row["response"]


def test_served_model_is_recorded_over_loopback(server: SandboxServer,
                                                make_session: Callable[..., Session]) -> None:
    session = make_session(server)
    answer = session.ask("Name a colour")
    assert answer.requested_model == "openrouter/free"
    assert answer.model and answer.model.endswith(":free") and answer.model != "openrouter/free"
    assert answer.mode == "sandbox" and "sandbox: simulated answer" in answer.footer()
    assert f"openrouter/free → {answer.model}" in answer.footer()
    (row,) = session.ledger.rows(call_id=answer.call_id)
    assert row["served_model"] == answer.model and row["provider"] == answer.provider
    assert row["generation_id"] == answer.generation_id and row["status"] == "ok"
    assert row["prompt_tokens"] == answer.usage["prompt_tokens"] > 0


def test_streamed_answer_equals_whole_answer_text(make_session: Callable[..., Session]) -> None:
    session = make_session()
    seen: list[str] = []
    answer = session.ask("Explain pacing", MODEL, stream=True,
                         on_delta=lambda delta: seen.append(delta.text))
    assert len(seen) > 3 and "".join(seen) == answer.text
    assert answer.ttft_s is not None and answer.usage["completion_tokens"]
