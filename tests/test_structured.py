"""Structured output: schema sent the right way, answers validated, re-asked a bounded number
of times, every attempt a ledger row with ``validated``."""

from __future__ import annotations

from collections.abc import Callable

import pydantic
import pytest

import openrouter_nb as orn
from openrouter_nb.session import Session
from openrouter_nb.validate import SchemaSpec, extract_json

from .conftest import FakeClock

SCHEMA = {"type": "object",
          "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
          "required": ["city", "population"]}
STRUCTURED = "google/gemma-3-27b-it:free"       # supports response_format, reliable
FLAKY = "deepseek/deepseek-chat-v3.1:free"      # supports it, but breaks JSON now and then
PROSE_ONLY = "meta-llama/llama-3.3-70b-instruct:free"  # no structured outputs


class City(pydantic.BaseModel):
    city: str
    population: int


def chat_bodies(session: Session) -> list[dict]:
    return [r.json for r in session.sandbox.requests if r.path.endswith("/chat/completions")]


@pytest.mark.parametrize("text", [
    '{"a": 1}', '```json\n{"a": 1}\n```', 'Sure! Here it is: {"a": 1} Hope that helps.',
])
def test_extract_json(text: str) -> None:
    assert extract_json(text) == {"a": 1}


def test_extract_json_failure_says_why() -> None:
    with pytest.raises(ValueError, match="cut off"):
        extract_json('{"a": 1, "b": ')


def test_schema_spec_from_dict_and_pydantic() -> None:
    assert SchemaSpec.of(SCHEMA).check('{"city": "Oslo", "population": 3}').ok
    failed = SchemaSpec.of(SCHEMA).check('{"city": "Oslo"}')
    assert not failed.ok and "population" in (failed.error or "")
    spec = SchemaSpec.of(City)
    # strict only where the schema itself forbids extra properties (strict providers demand it)
    assert spec.name == "City" and spec.response_format()["json_schema"]["strict"] is False
    closed = SchemaSpec.of({**SCHEMA, "additionalProperties": False})
    assert closed.response_format()["json_schema"]["strict"] is True
    assert spec.check('{"city": "Oslo", "population": 3}').data == City(city="Oslo", population=3)


def test_supported_model_gets_response_format(make_session: Callable[..., Session]) -> None:
    session = make_session()
    answer = session.ask("Largest city of Norway?", STRUCTURED, schema=SCHEMA)
    body = chat_bodies(session)[-1]
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"] == SCHEMA
    assert body["provider"]["require_parameters"] is True
    assert answer.validated is True and set(answer.data) == {"city", "population"}
    assert "valid JSON" in answer.footer()
    (row,) = session.ledger.rows(call_id=answer.call_id)
    assert row["validated"] is True


def test_unsupported_model_is_told_in_the_prompt(make_session: Callable[..., Session],
                                                 clock: FakeClock) -> None:
    """Without response_format, the schema goes in the prompt; the model follows it only
    sometimes, so re-asks (bounded, carrying the error back) matter more."""
    session = make_session(retries=2, clock=clock, sleep=clock.sleep, rpd=1000,
                           sandbox_options={"rpd": 1000})
    failed = rescued = None
    for n in range(60):
        before = len(chat_bodies(session))
        try:
            answer = session.ask(f"Largest city of country number {n}?", PROSE_ONLY, schema=City)
        except orn.InvalidOutputError as error:
            failed = failed or (error, chat_bodies(session)[before:])
        else:
            if answer.attempts > 1:
                rescued = rescued or answer
        if failed and rescued:
            break
    assert failed and rescued, "the prompt-schema model should both fail and recover"
    error, bodies = failed
    assert "response_format" not in bodies[0]
    assert "Reply with JSON only" in bodies[0]["messages"][-1]["content"]
    # bounded: the first try plus two re-asks, each carrying the validation error back
    assert len(bodies) == 3 and error.attempts == 3
    assert "not" in bodies[1]["messages"][-1]["content"].lower()
    rows = session.ledger.rows(call_id=error.call_id)
    assert [r["validated"] for r in rows] == [False, False, False]
    assert all(r["validation_error"] for r in rows)
    assert error.kind == "invalid_output" and error.partial_text
    assert rescued.validated is True and isinstance(rescued.data, City)


def test_invalid_answer_caught_and_reasked(make_session: Callable[..., Session],
                                           clock: FakeClock) -> None:
    """The flaky model breaks some answers; the re-ask with the error fixes them."""
    session = make_session(retries=2, clock=clock, sleep=clock.sleep)
    reasked, exhausted = [], []
    for n in range(20):
        try:
            answer = session.ask(f"Largest city of country number {n}?", FLAKY, schema=SCHEMA)
        except orn.InvalidOutputError as error:  # broken three times in a row: it happens
            exhausted.append(session.ledger.rows(call_id=error.call_id))
            continue
        rows = session.ledger.rows(call_id=answer.call_id)
        if len(rows) > 1:
            reasked.append(rows)
    assert reasked, "the flaky model never broke its JSON in 20 tries"
    assert len(exhausted) < len(reasked), "re-asking should fix more answers than it gives up on"
    for rows in reasked:
        assert rows[0]["validated"] is False and rows[-1]["validated"] is True
        assert [r["attempt"] for r in rows] == list(range(1, len(rows) + 1))
    for rows in exhausted:
        assert [r["validated"] for r in rows] == [False] * 3
        assert rows[-1]["status"] == "error" and rows[-1]["error_kind"] == "invalid_output"


def test_bad_schema_is_refused_before_sending(make_session: Callable[..., Session]) -> None:
    session = make_session()
    with pytest.raises(orn.BadRequestError, match="schema cannot be used"):
        session.ask("x", STRUCTURED, schema={"type": "no-such-type"})
    assert chat_bodies(session) == []
