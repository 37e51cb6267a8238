"""Tool tasks end to end: the bounded loop against the sandbox server over loopback.

Each test reads what the server received (``server.sandbox.requests``) and what the ledger
kept, so the counts are exact: requests sent, rows written, steps in the answer.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import openai
import pytest

import openrouter_nb as orn
from openrouter_nb.agent import TaskRefused
from openrouter_nb.api.errors import BudgetExceeded, DailyRateLimit, ModelUnavailableError
from openrouter_nb.api.types import StreamDelta
from openrouter_nb.sandbox import Sandbox, SandboxServer, sandbox_key
from openrouter_nb.session import Session
from openrouter_nb.tools import as_tool

from .conftest import FakeClock

REASONING_PARALLEL = "openai/gpt-oss-20b:free"  # reliable (1.0), parallel calls
ONE_AT_A_TIME = "meta-llama/llama-3.3-70b-instruct:free"
NO_TOOLS = "deepseek/deepseek-r1-0528:free"
POPULATION = {"Lyon": 522_000, "Oslo": 709_000, "Porto": 232_000}


def calculator(expression: str) -> float:
    """Calculate an arithmetic expression such as 3 * 7.

    Args:
        expression: digits and + - * / ( ) only
    """
    if set(expression) - set("0123456789.+-*/() "):
        raise ValueError(f"only digits and + - * / ( ) are allowed, not {expression!r}")
    return float(eval(expression, {"__builtins__": {}}))  # noqa: S307 - checked to arithmetic above


def population(city: str) -> int:
    """Look up the population of a city in our table.

    Args:
        city: the city's name, e.g. Lyon
    """
    return POPULATION[city]


PROMPT = "What is the population of Lyon, and what is 12 * 7? Use the calculator."


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with SandboxServer(Sandbox(seed=7, rpm=1000)) as srv:
        yield srv


def _sent(server: SandboxServer, since: int) -> list[dict[str, Any]]:
    return [r.json for r in server.sandbox.requests[since:] if r.path.endswith("/chat/completions")]


def _rows(session: Session, task_id: str | None) -> list[dict[str, Any]]:
    return [r for r in session.ledger.rows(session_id=session.session_id)
            if r["task_id"] == task_id]


def test_a_two_tool_task_over_loopback(server: SandboxServer,
                                       make_session: Callable[..., Session]) -> None:
    session = make_session(server)
    start = len(server.sandbox.requests)
    answer = session.ask(PROMPT, REASONING_PARALLEL, tools=[calculator, population])
    sent = _sent(server, start)
    assert len(sent) == 2 == answer.attempts == len(answer.steps)
    first, second = sent
    assert [t["function"]["name"] for t in first["tools"]] == ["calculator", "population"]
    assert first["tools"][1]["function"]["parameters"]["required"] == ["city"]
    assert [m["role"] for m in first["messages"]] == ["user"]
    # step 1: both tools at once (a parallel model); step 2 sends their results back
    calls = {run.name: run for run in answer.steps[0].tool_calls}
    assert calls["population"].arguments == {"city": "Lyon"}
    assert calls["population"].result == "522000"
    assert calls["calculator"].arguments == {"expression": "12 * 7"}
    assert calls["calculator"].result == "84.0"
    assistant, *tools = second["messages"][1:]
    assert assistant["role"] == "assistant" and assistant["content"] is None
    assert "reasoning" in assistant or "reasoning_details" in assistant  # echoed (§2.7)
    ids = [call["id"] for call in assistant["tool_calls"]]
    assert [t["role"] for t in tools] == ["tool", "tool"]
    assert [t["tool_call_id"] for t in tools] == ids
    assert sorted(t["content"] for t in tools) == ["522000", "84.0"]
    assert second["tools"] == first["tools"]
    assert "522000" in answer.text and answer.steps[1].tool_calls == ()
    rows = _rows(session, answer.task_id)
    assert [(r["step"], r["status"]) for r in rows] == [(1, "ok"), (2, "ok")]
    kept = json.loads(rows[0]["tool_calls"])
    assert {k["name"]: k["result"] for k in kept} == {"population": "522000",
                                                      "calculator": "84.0"}
    assert rows[1]["tool_calls"] is None
    assert "2 requests for this task · 4% of today's free quota" in answer.footer()
    assert answer.usage["prompt_tokens"] == sum(r["prompt_tokens"] for r in rows)


def test_one_call_per_turn_without_parallel_calls(server: SandboxServer,
                                                  make_session: Callable[..., Session]) -> None:
    session = make_session(server)
    start = len(server.sandbox.requests)
    answer = session.ask(PROMPT, REASONING_PARALLEL, tools=[calculator, population],
                         parallel_tool_calls=False)
    sent = _sent(server, start)
    assert len(sent) == 3 and all(b["parallel_tool_calls"] is False for b in sent)
    assert [len(step.tool_calls) for step in answer.steps] == [1, 1, 0]
    assert [m["role"] for m in sent[2]["messages"]] == ["user", "assistant", "tool",
                                                        "assistant", "tool"]


def test_max_steps_stops_a_loop_that_never_ends(server: SandboxServer,
                                                make_session: Callable[..., Session]) -> None:
    session = make_session(server)
    start = len(server.sandbox.requests)
    answer = session.ask("Calculate 2 + 2 again and again", REASONING_PARALLEL,
                         tools=[calculator], tool_choice="required", max_steps=3)
    assert len(_sent(server, start)) == 3 == answer.attempts
    assert all(len(step.tool_calls) == 1 for step in answer.steps)
    assert any("stopped at max_steps=3" in note for note in answer.notes)
    assert [r["step"] for r in _rows(session, answer.task_id)] == [1, 2, 3]


def test_the_budget_refuses_a_task_it_cannot_cover_and_stops_one_told_to_go_ahead(
        server: SandboxServer, make_session: Callable[..., Session]) -> None:
    session = make_session(server, budget=2)
    start = len(server.sandbox.requests)
    with pytest.raises(TaskRefused, match="up to 5 requests .* budget has 2 left; nothing was "
                                          "sent") as refused:
        session.ask("Calculate 2 + 2", REASONING_PARALLEL, tools=[calculator],
                    tool_choice="required")
    assert _sent(server, start) == [] and session.budget_used == 0
    assert refused.value.kind == "budget"
    with pytest.raises(BudgetExceeded) as stopped:
        session.ask("Calculate 2 + 2", REASONING_PARALLEL, tools=[calculator],
                    tool_choice="required", go_ahead=True)
    assert len(_sent(server, start)) == 2  # exactly the budget
    steps = stopped.value.steps  # type: ignore[attr-defined]
    assert [s.step for s in steps] == [1, 2] and "stopped after 2 steps" in stopped.value.message
    rows = _rows(session, stopped.value.task_id)  # type: ignore[attr-defined]
    assert [(r["step"], r["status"]) for r in rows] == [(1, "ok"), (2, "ok"), (3, "error")]


def test_the_day_quota_refuses_then_a_day_429_keeps_the_steps_done(
        tmp_path: Any, clock: FakeClock) -> None:
    session = Session(sandbox=True, home=tmp_path, clock=clock, sleep=clock.sleep, retries=0,
                      sandbox_options={"rpd": 3})
    with pytest.raises(TaskRefused, match="only 3 free requests are left today"):
        session.ask("Calculate 1 + 1", REASONING_PARALLEL, tools=[calculator], max_steps=4)
    with pytest.raises(DailyRateLimit) as day:
        session.ask("Calculate 1 + 1", REASONING_PARALLEL, tools=[calculator],
                    tool_choice="required", max_steps=4, go_ahead=True)
    assert [s.step for s in day.value.steps] == [1, 2, 3]  # type: ignore[attr-defined]
    assert session.sandbox is not None
    assert len([r for r in session.sandbox.requests if r.status == 200]) == 3


def test_a_per_minute_window_waits_and_the_task_continues(tmp_path: Any,
                                                         clock: FakeClock) -> None:
    session = Session(sandbox=True, home=tmp_path, clock=clock, sleep=clock.sleep,
                      sandbox_options={"rpm": 2})
    answer = session.ask(PROMPT, REASONING_PARALLEL, tools=[calculator, population],
                         parallel_tool_calls=False)
    assert len(answer.steps) == 3 and clock.slept and "522000" in answer.text


def test_a_tool_that_raises_sends_its_error_back(server: SandboxServer,
                                                 make_session: Callable[..., Session]) -> None:
    session = make_session(server)
    start = len(server.sandbox.requests)
    answer = session.ask("What is the population of Paris?", REASONING_PARALLEL,
                         tools=[population])
    run = answer.steps[0].tool_calls[0]
    assert run.arguments == {"city": "Paris"} and run.result is None
    assert run.error == "population raised KeyError: 'Paris'"
    tool_message = _sent(server, start)[1]["messages"][-1]
    assert tool_message == {"role": "tool", "tool_call_id": run.id,
                            "content": "Error: population raised KeyError: 'Paris'"}
    kept = json.loads(_rows(session, answer.task_id)[0]["tool_calls"])
    assert kept == [{"name": "population", "arguments": {"city": "Paris"},
                     "error": "population raised KeyError: 'Paris'"}]
    assert "⚠ population raised KeyError" in answer.trace_text()


def test_arguments_that_do_not_fit_are_answered_with_a_tool_error(
        server: SandboxServer, make_session: Callable[..., Session]) -> None:
    """A less reliable model sometimes spells a number out; the schema check catches it, the
    function never runs, and the model tries again with arguments that fit."""
    ran: list[int] = []

    def triple(n: int) -> int:
        """Triple a number."""
        ran.append(n)
        return 3 * n

    session = make_session(server)
    broken = None
    for k in range(2, 40):
        answer = session.ask(f"Triple the number {k}", "nvidia/nemotron-nano-9b-v2:free",
                             tools=[triple])
        errors = [run for step in answer.steps for run in step.tool_calls if run.error]
        if errors:
            broken = (k, errors[0], answer)
            break
    assert broken is not None, "the 0.75-reliable model never broke its arguments"
    k, run, answer = broken
    assert run.arguments == {"n": f"about {k}"}
    assert run.error is not None and "is not of type 'integer'" in run.error
    assert ran[-1] == k and answer.steps[-2].tool_calls[0].result == str(3 * k)


def test_an_unknown_tool_is_a_tool_error_not_a_crash(tmp_path: Any) -> None:
    """A recorded-shape exchange (two responses, the first calling a tool we never passed)."""
    replies = [
        {"id": "gen-1", "model": "x/y:free", "provider": "P", "choices": [{
            "index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": "", "tool_calls": [{
                    "id": "3sniiMddS", "index": 0, "type": "function",
                    "function": {"name": "rm_rf", "arguments": "{\"path\": \"/\"}"}}]}}],
         "usage": {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10}},
        {"id": "gen-2", "model": "x/y:free", "provider": "P", "choices": [{
            "index": 0, "finish_reason": "stop", "message": {"role": "assistant",
                                                           "content": "Sorry."}}],
         "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}},
    ]
    bodies: list[dict[str, Any]] = []

    def reply(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(200, json=replies[len(bodies) - 1])

    session = Session(api_key="sk-or-v1-" + "0" * 64, home=tmp_path, sandbox=False,
                      transport=httpx.MockTransport(reply))
    answer = session.ask("Tidy up", "x/y:free", tools=[calculator])
    run = answer.steps[0].tool_calls[0]
    assert run.name == "rm_rf" and run.arguments == {"path": "/"}
    assert run.error == "there is no tool named 'rm_rf'; the tools are: calculator."
    assert bodies[1]["messages"][-1]["content"].startswith("Error: there is no tool named")
    assert answer.text == "Sorry." and len(bodies) == 2
    session.close()


def test_streaming_shows_tool_calls_as_they_form(server: SandboxServer,
                                                 make_session: Callable[..., Session]) -> None:
    session = make_session(server)
    deltas: list[StreamDelta] = []
    events: list[str] = []
    answer = session.ask(PROMPT, REASONING_PARALLEL, tools=[calculator, population],
                         stream=True, on_delta=deltas.append,
                         on_event=lambda name, details: events.append(name))
    fragments = [d for d in deltas if d.kind == "tool_call"]
    by_index: dict[int, str] = {}
    for d in fragments:
        by_index[d.tool_index or 0] = by_index.get(d.tool_index or 0, "") + d.text
    assert {d.tool_name for d in fragments} == {"calculator", "population"}
    assert len(fragments) > 4  # the arguments arrive in pieces, the two calls interleaved
    assert [fragments[0].tool_index, fragments[1].tool_index] == [0, 1]
    merged = {run.name: json.dumps(run.arguments) for run in answer.steps[0].tool_calls}
    names = {d.tool_index: d.tool_name for d in fragments}
    assert {names[i]: text for i, text in by_index.items()} == merged
    assert events.count("step") == 2 and events.count("tool") == 2
    assert "522000" in answer.text


def test_a_model_without_tools_gets_the_real_404_and_the_router_picks_tool_models(
        server: SandboxServer, make_session: Callable[..., Session]) -> None:
    session = make_session(server)
    with pytest.raises(ModelUnavailableError) as info:
        session.ask("What is 1 + 1?", NO_TOOLS, tools=[calculator])
    assert 'No endpoints found that support tool use. Try disabling "calculator".' \
        in info.value.message
    served = {session.ask(f"Calculate {n} + 1", "openrouter/free", tools=[calculator],
                          max_steps=2).steps[0].model for n in range(8)}
    tool_models = {m.id for m in session.catalog.models() if m.tools}
    assert served and served <= tool_models and len(served) > 1


def test_a_conversation_keeps_the_tool_messages(server: SandboxServer,
                                                make_session: Callable[..., Session]) -> None:
    session = make_session(server)
    chat = session.chat(REASONING_PARALLEL, name="tools-chat", tools=[population])
    first = chat.ask("What is the population of Oslo?")
    assert "709000" in first.text and first.turn == 1
    assert [m.role for m in chat.messages] == ["user", "assistant", "tool", "assistant"]
    second = chat.ask("And the population of Porto?")
    assert "232000" in second.text and second.turn == 2
    resumed = orn.Conversation.resume("tools-chat", session=session)
    assert [m.role for m in resumed.messages] == [m.role for m in chat.messages]


def test_the_openai_sdk_completes_a_tool_round_trip(server: SandboxServer) -> None:
    spec = as_tool(population).spec()
    with openai.OpenAI(base_url=server.base_url, api_key=sandbox_key("sdk-tools"),
                       max_retries=0) as client:
        messages: list[Any] = [{"role": "user", "content": "What is the population of Lyon?"}]
        first = client.chat.completions.create(model=ONE_AT_A_TIME, messages=messages,
                                               tools=[spec])  # type: ignore[list-item]
        choice = first.choices[0]
        assert choice.finish_reason == "tool_calls" and choice.message.tool_calls
        call = choice.message.tool_calls[0]
        assert call.function.name == "population"  # type: ignore[union-attr]
        args = json.loads(call.function.arguments)  # type: ignore[union-attr]
        messages += [choice.message.model_dump(exclude_none=True),
                     {"role": "tool", "tool_call_id": call.id,
                      "content": str(population(**args))}]
        stream = client.chat.completions.create(model=ONE_AT_A_TIME, messages=messages,
                                                tools=[spec], stream=True)  # type: ignore[list-item]
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert "population returned 522000" in text
