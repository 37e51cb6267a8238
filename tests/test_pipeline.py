"""The call pipeline layer by layer, the one frozen configuration, and reasoning outcomes.

Each layer is tested alone against a small ``Engine`` stand-in made of real parts (a real
``QuotaTracker``, a real ``Ledger``); the whole chain against the sandbox.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import openrouter_nb as orn
from openrouter_nb import pipeline, prepare
from openrouter_nb.api.errors import (
    BadRequestError,
    BudgetExceeded,
    OpenRouterError,
    ProviderError,
    SensitiveInputBlocked,
    TruncatedError,
)
from openrouter_nb.api.types import ChatResult, Usage
from openrouter_nb.attempts import AttemptRecorder
from openrouter_nb.budget import Budget
from openrouter_nb.catalog import Catalog
from openrouter_nb.ledger import Ledger
from openrouter_nb.messages import Message, TextPart, user
from openrouter_nb.options import DEFAULT_MAX_TOKENS, CallOptions, SessionConfig
from openrouter_nb.quota import QuotaTracker
from openrouter_nb.retry import RULES, rule_for
from openrouter_nb.session import Session

from .conftest import FakeClock

R1 = "deepseek/deepseek-r1-0528:free"
QWEN3 = "qwen/qwen3-235b-a22b:free"
PLAIN = "meta-llama/llama-3.3-70b-instruct:free"


class StubEngine:
    """An engine whose client is a list of scripted outcomes; everything else is real."""

    mode = "sandbox"

    def __init__(self, tmp_path: Path, outcomes: list[ChatResult | OpenRouterError],
                 budget: int | None = None) -> None:
        self.clock = FakeClock()
        self.sleep = self.clock.sleep
        self.quota = QuotaTracker(clock=self.clock, sleep=self.sleep, day_count=lambda _s: 0)
        self.ledger = Ledger(tmp_path / "ledger.sqlite")
        self.recorder = AttemptRecorder(self.ledger, session_id="s", account="a",
                                        base_url="http://x", key=None, clock=self.clock)
        self.outcomes = outcomes
        self.bodies: list[dict[str, Any]] = []
        self.budget = Budget(budget)
        entries = [{"id": PLAIN, "supported_parameters": ["response_format"],
                    "context_length": 8000}]
        self.catalog = Catalog(tmp_path / "models.json", lambda: entries, clock=self.clock)

    def send(self, body: dict[str, Any], options: CallOptions, on_delta: Any) -> ChatResult:
        self.bodies.append(body)
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, OpenRouterError):
            raise outcome
        return outcome

    def spend_budget(self, row: dict[str, Any]) -> None:
        if not self.budget.spend():
            error = BudgetExceeded("spent")
            self.recorder.failed(error, row, mode=self.mode, wait_s=0.0)
            raise error

    def record_answer(self, result: ChatResult, row: dict[str, Any], **details: Any) -> None:
        self.recorder.answered(result, row, mode=self.mode, **details)

    def record_failure(self, error: OpenRouterError, row: dict[str, Any], *,
                       wait_s: float = 0.0) -> None:
        self.recorder.failed(error, row, mode=self.mode, wait_s=wait_s)

    def record_interrupt(self, row: dict[str, Any], partial: str, started: float) -> None:
        self.recorder.interrupted(row, partial, mode=self.mode, latency_s=0.0)

    def day_remaining(self, model: str) -> int | None:
        return None


def _result(text: str = "ok", **fields: Any) -> ChatResult:
    return ChatResult(text=text, model=PLAIN, provider="P", generation_id="g",
                      finish_reason=fields.pop("finish_reason", "stop"),
                      usage=Usage(prompt_tokens=3, completion_tokens=2), latency_s=0.1, **fields)


def _call(text: str = "hi", **options: Any) -> pipeline.Call:
    return pipeline.Call((user(text),), CallOptions(model=PLAIN).replace(**options), "call1")


# -- the configuration -------------------------------------------------------------------------

def test_options_are_declared_once_and_checked() -> None:
    config = SessionConfig.of(model=PLAIN, budget=2, max_tokens=100)
    assert config.call.model == PLAIN and config.budget == 2
    resolved = config.resolve(temperature=0.5)
    assert (resolved.model, resolved.max_tokens, resolved.temperature) == (PLAIN, 100, 0.5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.budget = 3  # type: ignore[misc]
    with pytest.raises(TypeError, match="Did you mean 'temperature'"):
        config.resolve(temprature=1)
    with pytest.raises(TypeError, match="model must be a model id"):
        config.resolve(model=123)
    with pytest.raises(TypeError, match="fallback must be a list of model ids"):
        config.resolve(fallback=["a/b", 7])
    with pytest.raises(ValueError, match="max_tokens must be a whole number above 0"):
        config.resolve(max_tokens=0)
    with pytest.raises(ValueError, match="reasoning='loud' is not understood"):
        config.resolve(reasoning="loud")


def test_a_call_naming_its_model_drops_the_session_fallbacks() -> None:
    config = SessionConfig.of(model=PLAIN, fallback=["a/b:free"], provider={"sort": "price"})
    assert config.resolve().chain == (PLAIN, "a/b:free")
    assert config.resolve(model="c/d:free").chain == ("c/d:free",)
    assert config.resolve(provider={"order": ["X"]}).provider == {"sort": "price",
                                                                 "order": ["X"]}


def test_default_max_tokens_leaves_room_to_think() -> None:
    assert DEFAULT_MAX_TOKENS >= 4096


@pytest.mark.parametrize("change", [
    {"record": "tape.json"}, {"sandbox": True}, {"profile": "p"}, {"replay_fallback": True},
])
def test_a_derived_session_keeps_every_setting(change: dict[str, Any], tmp_path: Path) -> None:
    session = Session(sandbox=True, home=tmp_path, model=PLAIN, budget=2, rpm=7, rpd=33,
                      max_tokens=99, system="terse", retries=1)
    session.ask("one")
    if "record" in change:
        change = {"record": tmp_path / "tape.json"}
    derived = session.derive(**change)
    assert derived.settings.home == tmp_path and derived.model == PLAIN
    assert (derived.quota.rpm, derived.quota.rpd) == (7, 33)
    assert (derived.max_tokens, derived.system, derived.config.call.retries) == (99, "terse", 1)
    assert (derived.budget, derived.budget_used) == (2, 1)
    derived.ask("two")
    with pytest.raises(BudgetExceeded):
        derived.ask("three")  # the budget spent before the switch stays spent
    derived.close()
    session.close()


def test_sandbox_on_keeps_the_budget_through_the_magic(ip: Any, session: Session) -> None:
    ip.run_line_magic("openrouter", "budget 1")
    ip.run_cell_magic("openrouter", "", "first")
    ip.run_line_magic("openrouter", "sandbox on")
    new = orn.get_session()
    assert new is not session and (new.budget, new.budget_used) == (1, 1)
    with pytest.raises(BudgetExceeded):
        new.ask("second")


# -- layer by layer ----------------------------------------------------------------------------

def test_retry_rules_are_one_table() -> None:
    assert rule_for(orn.DailyRateLimit("x")) == "stop"
    assert rule_for(orn.MinuteRateLimit("x")) == "wait_reset"
    assert rule_for(orn.InFlightCredits("x")) == "backoff"
    assert rule_for(orn.CreditsError("x")) == "stop"
    assert rule_for(TruncatedError("x")) == "stop"
    assert rule_for(ProviderError("x")) == "fallback_or_backoff"
    assert OpenRouterError in RULES


def test_prepare_alone_refuses_with_one_row(tmp_path: Path) -> None:
    engine = StubEngine(tmp_path, [])
    with pytest.raises(BadRequestError, match="prompt is empty"):
        prepare.prepare(engine, _call("  "))  # type: ignore[arg-type]
    secret = "my key is sk-or-v1-" + "a" * 64
    with pytest.raises(SensitiveInputBlocked):
        prepare.prepare(engine, _call(secret))  # type: ignore[arg-type]
    rows = engine.ledger.rows()
    assert [r["error_kind"] for r in rows] == ["bad_request", "blocked_sensitive"]
    assert rows[1]["prompt"] is None and engine.bodies == []


def test_prepare_guards_every_message_not_just_the_last(tmp_path: Path) -> None:
    engine = StubEngine(tmp_path, [])
    earlier = Message("user", (TextPart("write to jane.doe@example.com"),))
    call = dataclasses.replace(_call("and now?"), messages=(earlier, user("and now?")))
    with pytest.raises(SensitiveInputBlocked):
        prepare.prepare(engine, call)  # type: ignore[arg-type]


def test_attempt_alone_writes_exactly_one_row(tmp_path: Path) -> None:
    engine = StubEngine(tmp_path, [_result("hello"), ProviderError("boom", http_status=502)])
    count = pipeline._Count()
    outcome = pipeline.attempt(engine, _call(), PLAIN, count,  # type: ignore[arg-type]
                               lambda r, m: (None, None))
    assert outcome.result.text == "hello" and count.attempts == 1
    with pytest.raises(ProviderError):
        pipeline.attempt(engine, _call(), PLAIN, count,  # type: ignore[arg-type]
                         lambda r, m: (None, None))
    assert [(r["attempt"], r["status"]) for r in engine.ledger.rows()] == [(1, "ok"),
                                                                          (2, "error")]


def test_attempt_keeps_an_interrupted_row_and_reraises(tmp_path: Path) -> None:
    engine = StubEngine(tmp_path, [])

    def send(body: dict[str, Any], options: CallOptions, on_delta: Any) -> ChatResult:
        from openrouter_nb.api.types import StreamDelta

        on_delta(StreamDelta("partial "))
        on_delta(StreamDelta("answer"))
        raise KeyboardInterrupt

    engine.send = send  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        pipeline.attempt(engine, _call(stream=True), PLAIN,  # type: ignore[arg-type]
                         pipeline._Count(), lambda r, m: (None, None))
    (row,) = engine.ledger.rows()
    assert (row["status"], row["error_kind"], row["response"]) == (
        "interrupted", "interrupted", "partial answer")
    assert engine.quota.state().in_flight == 0 if hasattr(engine.quota.state(),
                                                          "in_flight") else True


def test_retry_layer_alone_backs_off_then_answers(tmp_path: Path) -> None:
    engine = StubEngine(tmp_path, [ProviderError("boom", http_status=502), _result("fine")])
    count = pipeline._Count()
    outcome = pipeline.with_retries(engine, _call(retries=2), count,  # type: ignore[arg-type]
                                    lambda r, m: (None, None))
    assert outcome.result.text == "fine" and count.attempts == 2
    assert engine.clock.now > 1_788_800_000.0  # it slept (on the fake clock) before retrying


def test_reask_layer_alone_sends_the_error_back(tmp_path: Path) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    engine = StubEngine(tmp_path, [_result('{"m": 1}'), _result('{"n": 2}')])
    call = prepare.prepare(engine, _call(schema=schema, retries=1))  # type: ignore[arg-type]
    outcome = pipeline.with_reasks(engine, call, pipeline._Count())  # type: ignore[arg-type]
    assert outcome.check is not None and outcome.check.data == {"n": 2}
    second = engine.bodies[1]["messages"]
    assert [m["role"] for m in second] == ["user", "assistant", "user"]
    assert "'n' is a required property" in second[-1]["content"]


# -- reasoning, end to end against the sandbox ---------------------------------------------------

def test_reasoning_exhausting_max_tokens_sends_one_request(
        make_session: Callable[..., Session]) -> None:
    session = make_session(retries=2)
    with pytest.raises(TruncatedError) as info:
        session.ask("What is an API rate limit?", R1, max_tokens=800)
    error = info.value
    assert error.kind == "truncated" and "max_tokens" in error.message
    assert "reasoning" in error.message.lower()
    chats = [r for r in session.sandbox.requests if r.path.endswith("/chat/completions")]
    assert len(chats) == 1
    (row,) = session.ledger.rows(call_id=error.call_id)
    assert row["error_kind"] == "truncated" and row["finish_reason"] == "length"
    assert row["reasoning_tokens"] and row["reasoning"]


@pytest.mark.parametrize("stream", [False, True])
def test_default_max_tokens_lets_a_reasoning_model_answer(
        stream: bool, make_session: Callable[..., Session]) -> None:
    session = make_session()
    answer = session.ask("What is an API rate limit?", R1, stream=stream)
    assert answer.text and answer.reasoning and answer.reasoning_tokens
    assert f"({answer.reasoning_tokens} thinking)" in answer.footer()
    (row,) = session.ledger.rows(call_id=answer.call_id)
    assert row["reasoning"] == answer.reasoning
    assert row["reasoning_tokens"] == answer.reasoning_tokens


def test_a_reasoning_only_answer_is_returned_flagged(make_session: Callable[..., Session]) -> None:
    session = make_session()
    answer = session.ask("Please think aloud: what is 2+2?", QWEN3)
    assert answer.text == answer.reasoning and answer.text
    assert any("only in its reasoning" in note for note in answer.notes)
    assert "only in its reasoning" in answer.footer()


def test_reasoning_option_reaches_the_body_or_is_refused(
        make_session: Callable[..., Session]) -> None:
    session = make_session()
    session.ask("hi", R1, reasoning="low")
    bodies = [r.json for r in session.sandbox.requests if r.path.endswith("/chat/completions")]
    assert bodies[-1]["reasoning"] == {"effort": "low"}
    with pytest.raises(BadRequestError, match="does not take reasoning options") as info:
        session.ask("hi", PLAIN, reasoning="high")
    assert R1 in info.value.message
    assert len([r for r in session.sandbox.requests
                if r.path.endswith("/chat/completions")]) == 1


def test_an_answer_cut_at_max_tokens_is_flagged(make_session: Callable[..., Session]) -> None:
    session = make_session()
    answer = session.ask("Write 1,500 words about rivers.", PLAIN, max_tokens=20)
    assert answer.finish_reason == "length"
    assert "cut at max_tokens (20)" in answer.footer()


def test_turn_messages_keep_reasoning_details(make_session: Callable[..., Session]) -> None:
    session = make_session()
    chat = session.chat(R1, name="thinker")
    chat.ask("What is an API rate limit?")
    (row,) = [r for r in session.ledger.rows() if r["status"] == "ok"]
    user_message, reply = json.loads(row["turn_messages"])
    assert user_message == {"role": "user", "content": "What is an API rate limit?"}
    assert reply["role"] == "assistant" and reply.get("reasoning_details")


def test_an_interrupt_while_waiting_for_a_slot_is_a_row_and_sends_nothing(
        tmp_path: Path) -> None:
    engine = StubEngine(tmp_path, [_result("never")])

    def acquire(model: str | None = None) -> Any:
        raise KeyboardInterrupt  # Kernel -> Interrupt during the pacing wait

    engine.quota.acquire = acquire  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        pipeline.attempt(engine, _call(), PLAIN,  # type: ignore[arg-type]
                         pipeline._Count(), lambda r, m: (None, None))
    (row,) = engine.ledger.rows()
    assert (row["status"], row["http_status"]) == ("interrupted", None)
    assert engine.bodies == [] and engine.ledger.count_attempts(since=0, account="a") == 0
