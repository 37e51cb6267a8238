"""Multi-turn requests: answers that visibly depend on the history sent, prompt tokens that grow
with it, and every kind of message a real conversation re-sends accepted."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from openrouter_nb.sandbox import Sandbox, SandboxServer, SandboxTransport, sandbox_key
from openrouter_nb.sandbox.history import prompt_tokens

MODEL = "mistralai/mistral-small-3.2-24b-instruct:free"
R1 = "deepseek/deepseek-r1-0528:free"
AUTH = {"Authorization": f"Bearer {sandbox_key()}"}
Q1, Q2, Q3 = ("What is an API rate limit?", "And what does a 429 status mean?",
              "How long should I wait before retrying?")


@pytest.fixture(params=["transport", "server"])
def client(request: pytest.FixtureRequest) -> Iterator[httpx.Client]:
    sb = Sandbox(seed=2, rpm=1000)
    if request.param == "transport":
        with httpx.Client(transport=SandboxTransport(sb), base_url="http://t/api/v1",
                          headers=AUTH) as c:
            yield c
    else:
        with SandboxServer(sb) as srv, httpx.Client(base_url=srv.base_url, headers=AUTH,
                                                    timeout=5) as c:
            yield c


def _post(client: httpx.Client, messages: list[dict[str, Any]], model: str = MODEL,
          **extra: Any) -> dict[str, Any]:
    r = client.post("/chat/completions", json={"model": model, "messages": messages, **extra})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def _conversation(client: httpx.Client, questions: list[str],
                  system: str | None = "Be brief.") -> list[dict[str, Any]]:
    """Ask each question in turn, re-sending the whole history; the answers, in order."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    replies = []
    for q in questions:
        messages.append({"role": "user", "content": q})
        obj = _post(client, messages)
        replies.append(obj)
        messages.append({"role": "assistant",
                         "content": obj["choices"][0]["message"]["content"]})
    return replies


def test_answers_name_the_turn_and_quote_the_previous_question(client: httpx.Client) -> None:
    one, two, three = (r["choices"][0]["message"]["content"]
                       for r in _conversation(client, [Q1, Q2, Q3]))
    assert one.startswith(f"[sandbox] Simulated answer from {MODEL} about "
                          "\"What is an API rate limit\": ")
    assert "turn" not in one.split(":")[0]
    assert two.startswith(f"[sandbox] Simulated answer from {MODEL} about \"And what does a "
                          f"429 status mean\" (turn 2 — earlier you asked: \"{Q1}\"):")
    assert three.startswith(f"[sandbox] Simulated answer from {MODEL} about \"How long should "
                            f"I wait before retrying\" (turn 3 — earlier you asked: \"{Q2}\"):")


def test_the_same_question_alone_gets_a_turn_one_answer(client: httpx.Client) -> None:
    alone = _post(client, [{"role": "user", "content": Q2}])["choices"][0]["message"]
    assert "earlier you asked" not in alone["content"]
    assert alone["content"].startswith(f"[sandbox] Simulated answer from {MODEL} about "
                                       "\"And what does a 429 status mean\":")


def test_prompt_tokens_grow_with_the_whole_history(client: httpx.Client) -> None:
    replies = _conversation(client, [Q1, Q2, Q3, "Thanks!"])
    counts = [r["usage"]["prompt_tokens"] for r in replies]
    assert counts == sorted(counts) and len(set(counts)) == 4
    # Each turn re-sends every earlier question and answer: about 4/3 tokens per word.
    history = [{"role": "system", "content": "Be brief."}]
    for q, r in zip([Q1, Q2, Q3], replies[:3], strict=True):
        history += [{"role": "user", "content": q},
                    {"role": "assistant", "content": r["choices"][0]["message"]["content"]}]
    words = sum(len(m["content"].split()) for m in history) + 1  # + "Thanks!"
    assert counts[-1] == round(words * 4 / 3)


def test_long_previous_question_is_shortened(client: httpx.Client) -> None:
    long_q = "Please explain " + "very " * 40 + "carefully what a token bucket is."
    content = _post(client, [{"role": "user", "content": long_q},
                             {"role": "assistant", "content": "A bucket."},
                             {"role": "user", "content": "Shorter, please."}]
                    )["choices"][0]["message"]["content"]
    quoted = content.split("earlier you asked: \"")[1].split("\"):")[0]
    assert len(quoted) == 80 and quoted.endswith("…") and quoted.startswith("Please explain very")


RICH_HISTORY: list[dict[str, Any]] = [
    {"role": "system", "content": [{"type": "text", "text": "You are terse."}]},
    {"role": "developer", "content": "Prefer lists."},
    {"role": "user", "content": [{"type": "text", "text": "What's the weather in Paris?"}]},
    {"role": "assistant", "content": None, "reasoning": "Need the weather tool.",
     "reasoning_details": [{"type": "reasoning.text", "text": "Need the weather tool.",
                            "format": "unknown", "index": 0},
                           {"type": "reasoning.encrypted", "data": "gAAAAAxyz", "id": "rs_1",
                            "format": "openai-responses-v1", "index": 0}],
     "tool_calls": [{"id": "call_1", "type": "function",
                     "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
    {"role": "tool", "tool_call_id": "call_1",
     "content": [{"type": "text", "text": "18 C and sunny"}]},
    {"role": "assistant", "content": [{"type": "text", "text": "It is 18 C and sunny."}],
     "annotations": [{"type": "file", "file": {"hash": "ab" * 32, "name": "notes.pdf",
                                               "content": [{"type": "text", "text": "x"}]}}]},
    {"role": "user", "content": "And tomorrow?"},
]


@pytest.mark.parametrize("stream", [False, True])
def test_every_kind_of_history_message_is_accepted(client: httpx.Client, stream: bool) -> None:
    body = {"model": R1, "messages": RICH_HISTORY, "stream": stream}
    r = client.post("/chat/completions", json=body)
    assert r.status_code == 200, r.text
    if stream:
        events = [json.loads(ln[6:]) for ln in r.text.splitlines() if ln.startswith("data: {")]
        content = "".join(ev["choices"][0]["delta"].get("content") or ""
                          for ev in events if ev["choices"])
        reasoning = "".join(ev["choices"][0]["delta"].get("reasoning") or ""
                            for ev in events if ev["choices"])
        usage = events[-1]["usage"]
    else:
        message = r.json()["choices"][0]["message"]
        content, reasoning, usage = message["content"], message["reasoning"], r.json()["usage"]
    assert "(turn 2 — earlier you asked: \"What's the weather in Paris?\")" in content
    assert "This is turn 2; earlier the user asked: \"What's the weather in Paris?\"" in reasoning
    assert usage["prompt_tokens"] == prompt_tokens(RICH_HISTORY)


def test_tool_call_arguments_count_as_prompt_tokens() -> None:
    call = {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "lookup",
                                                     "arguments": "{\"q\": \"a b c d e f\"}"}}]}
    user = {"role": "user", "content": "one two three"}
    assert prompt_tokens([user, call]) == round((3 + 1 + 7) * 4 / 3)
    assert prompt_tokens([user]) == 4


@pytest.mark.parametrize(("messages", "phrase"), [
    ([{"role": "wizard", "content": "hi"}], "Invalid message at index 0: 'role' must be one of"),
    ([{"role": "user", "content": "hi"}, "hello"], "Invalid message at index 1: expected an"),
])
def test_malformed_messages_are_400s_that_do_not_count(messages: list[Any], phrase: str) -> None:
    sb = Sandbox()
    with httpx.Client(transport=SandboxTransport(sb), base_url="http://t/api/v1",
                      headers=AUTH) as c:
        r = c.post("/chat/completions", json={"model": MODEL, "messages": messages})
    assert r.status_code == 400 and r.json()["error"]["message"].startswith(phrase)
    assert sb.quota.daily(sandbox_key())["used"] == 0


def test_history_changes_the_answer_deterministically(client: httpx.Client) -> None:
    first = [r["choices"][0]["message"]["content"] for r in _conversation(client, [Q1, Q2])]
    again = [r["choices"][0]["message"]["content"] for r in _conversation(client, [Q1, Q2])]
    assert first == again
    other = _conversation(client, ["What is a token?", Q2])[1]["choices"][0]["message"]
    assert other["content"] != first[1] and "What is a token?" in other["content"]
