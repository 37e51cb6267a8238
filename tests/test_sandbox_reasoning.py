"""Reasoning models in the sandbox: catalog, effort, exclude, mandatory, max_tokens exhaustion,
reasoning-only replies, the free router's picks, and shapes checked against real traffic."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from openrouter_nb.sandbox import Sandbox, SandboxServer, SandboxTransport, sandbox_key
from openrouter_nb.sandbox.catalog import by_id

R1 = "deepseek/deepseek-r1-0528:free"
QWEN3 = "qwen/qwen3-235b-a22b:free"
OSS = "openai/gpt-oss-20b:free"
GPT5 = "openai/gpt-5-mini"
PLAIN = "meta-llama/llama-3.3-70b-instruct:free"
REASONERS = {R1, QWEN3, OSS, "deepseek/deepseek-r1-0528", "qwen/qwen3-235b-a22b",
             "openai/gpt-oss-20b", GPT5}
QUESTION = "What is an API rate limit?"
AUTH = {"Authorization": f"Bearer {sandbox_key()}"}
MANDATORY = {"error": {"message": "Reasoning is mandatory for this endpoint and cannot be "
                                  "disabled.", "code": 400, "metadata": {"provider_name": None}}}


@pytest.fixture
def sb() -> Sandbox:
    return Sandbox(seed=4, rpm=1000)


@pytest.fixture
def client(sb: Sandbox) -> Iterator[httpx.Client]:
    with httpx.Client(transport=SandboxTransport(sb), base_url="http://t/api/v1",
                      headers=AUTH) as c:
        yield c


@pytest.fixture(scope="module")
def loopback() -> Iterator[SandboxServer]:
    with SandboxServer(Sandbox(seed=4, rpm=1000)) as srv:
        yield srv


def _body(model: str, text: str = QUESTION, **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


def _ask(client: httpx.Client, model: str, text: str = QUESTION,
         headers: dict[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    r = client.post("/chat/completions", json=_body(model, text, **extra), headers=headers)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def _events(client: httpx.Client, model: str, text: str = QUESTION,
            headers: dict[str, str] | None = None, **extra: Any) -> tuple[list[str], list[Any]]:
    with client.stream("POST", "/chat/completions", json=_body(model, text, stream=True, **extra),
                       headers=headers) as r:
        assert r.status_code == 200
        lines = [ln for ln in r.iter_lines() if ln]
    return lines, [json.loads(ln[6:]) for ln in lines if ln.startswith("data: {")]


def _rtokens(obj: dict[str, Any]) -> int:
    return obj["usage"]["completion_tokens_details"]["reasoning_tokens"]  # type: ignore[no-any-return]


# --- catalog ----------------------------------------------------------------------------------

def test_catalog_lists_reasoning_models(client: httpx.Client) -> None:
    data = {m["id"]: m for m in client.get("/models").json()["data"]}
    for model_id in REASONERS:
        entry = data[model_id]
        assert {"reasoning", "include_reasoning"} <= set(entry["supported_parameters"])
        assert set(entry["reasoning"]) == {"mandatory", "supported_efforts", "default_effort"}
        assert entry["reasoning"]["default_effort"] == "medium"
    assert data[R1]["reasoning"] == {"mandatory": False, "supported_efforts":
                                     ["high", "medium", "low"], "default_effort": "medium"}
    assert data[GPT5]["reasoning"] == {"mandatory": True, "supported_efforts":
                                       ["high", "medium", "low", "minimal"],
                                       "default_effort": "medium"}
    assert "reasoning_effort" in data[GPT5]["supported_parameters"]
    assert "reasoning" not in data[PLAIN] and "reasoning" not in data[PLAIN]["supported_parameters"]
    assert "reasoning" not in data["openrouter/free"]  # routers carry no reasoning object
    filtered = client.get("/models", params={"supported_parameters": "reasoning"}).json()["data"]
    assert {m["id"] for m in filtered} == REASONERS | {"openrouter/free", "openrouter/auto"}
    assert data[R1]["pricing"] == {"prompt": "0", "completion": "0"}
    assert float(data[GPT5]["pricing"]["completion"]) > 0


# --- effort -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("model", "effort", "low", "high"), [
    (R1, "low", 230, 270), (R1, "medium", 828, 972), (R1, "high", 2208, 2592),
    (QWEN3, "low", 138, 162), (QWEN3, "medium", 414, 486), (QWEN3, "high", 1012, 1188),
    (OSS, "low", 55, 65), (OSS, "medium", 184, 216), (OSS, "high", 598, 702),
    (GPT5, "minimal", 64, 64), (GPT5, "low", 128, 192), (GPT5, "medium", 384, 448),
    (GPT5, "high", 1408, 1600),
])
def test_reasoning_length_by_model_and_effort(client: httpx.Client, model: str, effort: str,
                                              low: int, high: int) -> None:
    for question in (QUESTION, "Why is the sky blue?", "Explain recursion to a child"):
        obj = _ask(client, model, question, reasoning={"effort": effort})
        n = _rtokens(obj)
        assert low <= n <= high, (question, n)
        if model == GPT5:
            assert n % 64 == 0  # GPT-5 reports reasoning in steps of 64, as in real traffic
        usage = obj["usage"]
        assert usage["completion_tokens"] > n  # reasoning is part of completion_tokens
        assert obj["choices"][0]["finish_reason"] == "stop"


def test_default_effort_is_medium_and_snaps(client: httpx.Client) -> None:
    default = _rtokens(_ask(client, R1))
    assert default == _rtokens(_ask(client, R1, reasoning={"effort": "medium"}))
    assert default == _rtokens(_ask(client, R1, reasoning={"enabled": True}))
    assert default == _rtokens(_ask(client, R1, include_reasoning=True))
    low = _rtokens(_ask(client, R1, reasoning={"effort": "low"}))
    assert _rtokens(_ask(client, R1, reasoning={"effort": "minimal"})) == low  # nearest: low
    high = _rtokens(_ask(client, R1, reasoning={"effort": "high"}))
    assert _rtokens(_ask(client, R1, reasoning={"effort": "xhigh"})) == high
    assert _rtokens(_ask(client, R1, reasoning_effort="high")) == high  # top-level alias
    assert low < default < high


def test_reasoning_budget_caps_the_length(client: httpx.Client) -> None:
    assert _rtokens(_ask(client, R1, reasoning={"max_tokens": 300})) == 300
    assert _rtokens(_ask(client, QWEN3, reasoning={"max_tokens": 5000})) <= 1188  # its most
    message = _ask(client, R1, reasoning={"max_tokens": 300})["choices"][0]["message"]
    assert message["reasoning"] == message["reasoning_details"][0]["text"]


def test_medium_on_r1_needs_more_than_800_tokens(client: httpx.Client) -> None:
    cut = _ask(client, R1, max_tokens=800)
    choice = cut["choices"][0]
    assert choice["finish_reason"] == choice["native_finish_reason"] == "length"
    assert choice["message"]["content"] == ""
    fits = _ask(client, R1, max_tokens=4096)
    assert fits["choices"][0]["finish_reason"] == "stop"
    assert fits["choices"][0]["message"]["content"].startswith("[sandbox] Simulated answer")
    assert fits["usage"]["completion_tokens"] < 4096


# --- exclude, off, mandatory --------------------------------------------------------------------

@pytest.mark.parametrize("extra", [{"reasoning": {"exclude": True}},
                                   {"include_reasoning": False},
                                   {"reasoning": {"effort": "low", "exclude": True}}])
def test_excluded_reasoning_is_spent_not_shown(client: httpx.Client,
                                               extra: dict[str, Any]) -> None:
    shown = _ask(client, R1, reasoning=extra.get("reasoning", {}) | {"exclude": False})
    hidden = _ask(client, R1, **extra)
    message = hidden["choices"][0]["message"]
    assert message["reasoning"] is None and "reasoning_details" not in message
    assert message["content"] == shown["choices"][0]["message"]["content"]
    assert _rtokens(hidden) == _rtokens(shown) > 0
    assert hidden["usage"]["completion_tokens"] == shown["usage"]["completion_tokens"]


@pytest.mark.parametrize("extra", [{"reasoning": {"enabled": False}},
                                   {"reasoning": {"effort": "none"}},
                                   {"reasoning_effort": "none"}])
def test_reasoning_off(client: httpx.Client, extra: dict[str, Any]) -> None:
    obj = _ask(client, R1, **extra)
    message = obj["choices"][0]["message"]
    assert message["reasoning"] is None and "reasoning_details" not in message
    assert _rtokens(obj) == 0 and obj["usage"]["completion_tokens"] < 100
    assert message["content"].startswith(f"[sandbox] Simulated answer from {R1}")


@pytest.mark.parametrize("extra", [{"reasoning": {"enabled": False}},
                                   {"reasoning": {"effort": "none"}},
                                   {"include_reasoning": False}])
def test_mandatory_reasoning_cannot_be_disabled(sb: Sandbox, client: httpx.Client,
                                                extra: dict[str, Any]) -> None:
    r = client.post("/chat/completions", json=_body(GPT5, **extra))
    assert r.status_code == 400
    assert r.json()["error"] == MANDATORY["error"]
    assert r.json()["user_id"].startswith("user_")
    assert sb.requests[-1].model is None
    excluded = _ask(client, GPT5, reasoning={"exclude": True})  # hiding it is allowed
    assert excluded["choices"][0]["message"]["reasoning"] is None and _rtokens(excluded) > 0


def test_mandatory_refusal_falls_back_to_the_next_model(client: httpx.Client) -> None:
    obj = _ask(client, GPT5, models=[GPT5, "openai/gpt-oss-20b"], reasoning={"enabled": False})
    assert obj["model"] == "openai/gpt-oss-20b" and _rtokens(obj) == 0


def test_non_reasoning_model_ignores_reasoning(client: httpx.Client) -> None:
    plain = _ask(client, PLAIN)
    asked = _ask(client, PLAIN, reasoning={"effort": "high"})
    assert asked["choices"][0]["message"] == plain["choices"][0]["message"]
    assert asked["choices"][0]["message"]["reasoning"] is None and _rtokens(asked) == 0


@pytest.mark.parametrize(("extra", "phrase"), [
    ({"reasoning": {"effort": "extreme"}}, "Invalid reasoning effort 'extreme'"),
    ({"reasoning": "high"}, "'reasoning' must be an object."),
    ({"reasoning": {"max_tokens": -1}}, "'reasoning.max_tokens' must be a non-negative"),
])
def test_malformed_reasoning_is_a_400_that_does_not_count(sb: Sandbox, client: httpx.Client,
                                                          extra: dict[str, Any],
                                                          phrase: str) -> None:
    r = client.post("/chat/completions", json=_body(PLAIN, **extra))
    assert r.status_code == 400 and phrase in r.json()["error"]["message"]
    assert sb.quota.daily(sandbox_key())["used"] == 0


# --- shapes -------------------------------------------------------------------------------------

def test_text_style_message(sb: Sandbox, client: httpx.Client) -> None:
    obj = _ask(client, R1)
    message = obj["choices"][0]["message"]
    assert list(message) == ["role", "content", "refusal", "reasoning", "reasoning_details"]
    assert message["reasoning"].startswith(f"[sandbox] Simulated reasoning of {R1} (medium "
                                           "effort). The user asks about \"What is an API rate "
                                           "limit\".")
    assert message["reasoning_details"] == [{"type": "reasoning.text",
                                             "text": message["reasoning"],
                                             "format": "unknown", "index": 0}]
    assert message["content"].startswith(f"[sandbox] Simulated answer from {R1}")
    gen = obj["id"]
    assert client.get("/generation", params={"id": gen}).status_code == 404  # first poll
    data = client.get("/generation", params={"id": gen}).json()["data"]
    assert data["native_tokens_reasoning"] == _rtokens(obj)
    assert data["tokens_completion"] == obj["usage"]["completion_tokens"]


def test_openai_style_message(client: httpx.Client) -> None:
    obj = _ask(client, GPT5)
    message = obj["choices"][0]["message"]
    summary, encrypted = message["reasoning_details"]
    assert summary == {"type": "reasoning.summary", "summary": message["reasoning"],
                       "format": "openai-responses-v1", "index": 0}
    assert message["reasoning"].startswith("**Thinking about What is an API rate limit**")
    assert set(encrypted) == {"type", "data", "id", "format", "index"}
    assert encrypted["type"] == "reasoning.encrypted" and encrypted["id"].startswith("rs_")
    assert encrypted["data"].startswith("gAAAAA")
    assert len(message["reasoning"].split()) < _rtokens(obj)  # a summary of hidden thinking
    assert obj["usage"]["cost"] > 0


def test_stream_reasoning_then_content(client: httpx.Client) -> None:
    whole = _ask(client, R1)
    lines, events = _events(client, R1)
    deltas = [ev["choices"][0]["delta"] for ev in events if ev["choices"]]
    assert deltas[0] == {"role": "assistant", "content": "", "reasoning": None,
                         "reasoning_details": []}
    kinds = ["r" if d["reasoning"] else "c" if d["content"] else "-" for d in deltas]
    assert "".join(kinds).strip("-") == "r" * kinds.count("r") + "c" * kinds.count("c")
    reasoning = "".join(d["reasoning"] for d in deltas if d["reasoning"])
    assert reasoning == whole["choices"][0]["message"]["reasoning"]
    assert all(d["reasoning_details"] == [{"type": "reasoning.text", "text": d["reasoning"],
                                           "format": "unknown", "index": 0}]
               for d in deltas if d["reasoning"])
    content = "".join(d["content"] for d in deltas)
    assert content == whole["choices"][0]["message"]["content"]
    assert all(d["reasoning"] is None and d["reasoning_details"] == []
               for d in deltas if d["content"])
    assert events[-2]["choices"][0]["finish_reason"] == "stop"
    assert events[-1]["choices"] == [] and events[-1]["usage"] == whole["usage"]
    assert all("usage" not in ev for ev in events[:-1])
    assert lines[-1] == "data: [DONE]"


def test_stream_openai_style(client: httpx.Client) -> None:
    whole = _ask(client, GPT5, reasoning={"effort": "low"})
    _, events = _events(client, GPT5, reasoning={"effort": "low"})
    deltas = [ev["choices"][0]["delta"] for ev in events if ev["choices"]]
    details = [item for d in deltas for item in d["reasoning_details"]]
    kinds = [item["type"] for item in details]
    assert kinds == ["reasoning.summary"] * (len(kinds) - 1) + ["reasoning.encrypted"]
    assert details[-1] == whole["choices"][0]["message"]["reasoning_details"][1]
    assert "".join(item["summary"] for item in details[:-1]) == \
        whole["choices"][0]["message"]["reasoning"]
    assert events[-1]["usage"] == whole["usage"]


def test_stream_excluded_reasoning_has_no_reasoning_keys(client: httpx.Client) -> None:
    lines, events = _events(client, R1, reasoning={"exclude": True})
    deltas = [ev["choices"][0]["delta"] for ev in events if ev["choices"]]
    assert all(set(d) == {"role", "content"} for d in deltas)
    assert _rtokens(events[-1]) > 800
    assert lines.count(": OPENROUTER PROCESSING") == 3  # keep-alive while it thinks unseen


# --- exhaustion -----------------------------------------------------------------------------------

@pytest.mark.parametrize("cap_key", ["max_tokens", "max_completion_tokens"])
def test_exhausted_json(client: httpx.Client, cap_key: str) -> None:
    obj = _ask(client, R1, **{cap_key: 800})
    choice = obj["choices"][0]
    assert choice["finish_reason"] == "length" and choice["native_finish_reason"] == "length"
    message = choice["message"]
    assert message["content"] == ""
    assert message["reasoning"].startswith("[sandbox] Simulated reasoning")
    assert message["reasoning_details"][0]["text"] == message["reasoning"]
    assert obj["usage"]["completion_tokens"] == _rtokens(obj) == 800


def test_exhausted_stream_has_the_real_shape(sb: Sandbox, client: httpx.Client) -> None:
    lines, events = _events(client, R1, max_tokens=40)
    assert lines[-1] == "data: [DONE]"
    *thinking, limit, last = events
    assert all(ev["choices"][0]["finish_reason"] is None for ev in thinking)
    assert sum(1 for ev in thinking if ev["choices"][0]["delta"]["reasoning"]) == 40
    assert all(ev["choices"][0]["delta"]["content"] == "" for ev in thinking)
    assert limit["choices"][0]["finish_reason"] == "length"
    assert limit["choices"][0]["native_finish_reason"] == "length"
    assert limit["choices"][0]["delta"] == {"role": "assistant", "content": "",
                                            "reasoning": None, "reasoning_details": []}
    assert "usage" not in limit
    assert last["error"] == {"code": 400, "message": "Token limit reached"}
    assert last["choices"] == [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                "finish_reason": None, "native_finish_reason": None,
                                "logprobs": None}]
    assert last["usage"]["completion_tokens"] == 40
    assert _rtokens(last) == 41  # one more than completion_tokens, as in the real capture
    assert sb.requests[-1].t_end is not None


def test_exhausted_stream_when_excluded(client: httpx.Client) -> None:
    _, events = _events(client, R1, max_tokens=100, reasoning={"exclude": True})
    assert [set(ev["choices"][0]["delta"]) for ev in events] == [{"role", "content"}] * 3
    assert events[1]["choices"][0]["finish_reason"] == "length"
    assert events[2]["error"]["message"] == "Token limit reached"


def test_content_cut_after_reasoning(client: httpx.Client) -> None:
    budget = _rtokens(_ask(client, OSS)) + 5
    obj = _ask(client, OSS, max_tokens=budget)
    choice = obj["choices"][0]
    assert choice["finish_reason"] == "length" and choice["message"]["content"]
    assert obj["usage"]["completion_tokens"] == budget
    _, events = _events(client, OSS, max_tokens=budget)
    assert "error" not in events[-1] and events[-1]["usage"] == obj["usage"]
    assert events[-2]["choices"][0]["finish_reason"] == "length"


# --- reasoning-only replies ---------------------------------------------------------------------

def test_qwen3_answers_in_reasoning_when_asked_to_think_aloud(client: httpx.Client) -> None:
    prompt = "Think aloud: what is an API rate limit?"
    obj = _ask(client, QWEN3, prompt)
    choice = obj["choices"][0]
    assert choice["finish_reason"] == "stop" and choice["message"]["content"] == ""
    reasoning = choice["message"]["reasoning"]
    thinking, reply = reasoning.split("\n\n")
    assert thinking.startswith("[sandbox] Simulated reasoning of")
    assert reply.startswith(f"[sandbox] Simulated answer from {QWEN3}")
    assert _rtokens(obj) == obj["usage"]["completion_tokens"]
    normal = _ask(client, QWEN3, "What is an API rate limit?")["choices"][0]["message"]
    assert normal["content"].startswith("[sandbox] Simulated answer")
    other = _ask(client, R1, prompt)["choices"][0]["message"]  # only qwen3 has the quirk
    assert other["content"].startswith("[sandbox] Simulated answer")
    assert "think aloud" in by_id(QWEN3).to_api()["description"]  # type: ignore[union-attr]


def test_reasoning_only_fault_streamed(client: httpx.Client) -> None:
    whole = _ask(client, R1, headers={"X-Sandbox-Fault": "reasoning_only"})
    _, events = _events(client, R1, headers={"X-Sandbox-Fault": "reasoning_only"})
    deltas = [ev["choices"][0]["delta"] for ev in events if ev["choices"]]
    assert all(d["content"] == "" for d in deltas)
    reasoning = "".join(d["reasoning"] or "" for d in deltas)
    assert reasoning == whole["choices"][0]["message"]["reasoning"]
    assert "[sandbox] Simulated answer from" in reasoning
    assert events[-2]["choices"][0]["finish_reason"] == "stop"


# --- the free router ------------------------------------------------------------------------------

def test_free_router_sometimes_picks_a_reasoning_model() -> None:
    def served(seed: int) -> list[tuple[str, int, bool]]:
        sb = Sandbox(seed=seed, rpm=1000)
        with httpx.Client(transport=SandboxTransport(sb), base_url="http://t/api/v1",
                          headers=AUTH) as c:
            out = []
            for i in range(24):
                obj = _ask(c, "openrouter/free", f"Question {i}: what is a rate limit?")
                message = obj["choices"][0]["message"]
                out.append((obj["model"], _rtokens(obj), message["reasoning"] is not None))
            return out

    first = served(7)
    assert first == served(7)  # deterministic for a fresh sandbox
    reasoned = [(m, n, shown) for m, n, shown in first if m in REASONERS]
    assert reasoned and len(reasoned) < len(first)
    assert all(n > 0 and shown for _, n, shown in reasoned)
    assert all(n == 0 and not shown for m, n, shown in first if m not in REASONERS)


# --- against real traffic ---------------------------------------------------------------------------

yaml = pytest.importorskip("yaml")
_DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "real-traffic"
REAL = Path(os.environ.get("OPENROUTER_NB_REAL_TRAFFIC", _DEFAULT))
Shapes = dict[str, list[frozenset[str]]]


def _add(shapes: Shapes, level: str, obj: Any) -> None:
    if isinstance(obj, dict):
        shapes.setdefault(level, []).append(frozenset(obj))


def _shapes_of(obj: dict[str, Any], shapes: Shapes, *, details: Shapes) -> None:
    """Key sets of one response body or chunk, by level."""
    _add(shapes, "top", obj)
    usage = obj.get("usage")
    _add(shapes, "usage", usage)
    for sub in ("completion_tokens_details", "prompt_tokens_details", "cost_details"):
        _add(shapes, f"usage.{sub}", (usage or {}).get(sub))
    _add(shapes, "error", obj.get("error"))
    for choice in obj.get("choices") or []:
        _add(shapes, "choice", choice)
        part = choice.get("message") or choice.get("delta") or {}
        thinks = bool(part.get("reasoning") or part.get("reasoning_details"))
        _add(shapes, ("message" if "message" in choice else "delta")
             + (":reasoning" if thinks and "delta" in choice else ""), part)
        for item in part.get("reasoning_details") or []:
            _add(details, f"detail:{item['type']}", item)


def _real_shapes() -> tuple[Shapes, Shapes, Shapes]:
    """(non-streamed, streamed, reasoning_details items) key sets of real reasoning answers."""
    bodies: Shapes = {}
    streams: Shapes = {}
    details: Shapes = {}
    for path in sorted(REAL.glob("*/*.yaml")) if REAL.is_dir() else []:
        for it in (yaml.safe_load(path.read_text()) or {}).get("interactions") or []:
            resp = it["response"]
            if "chat/completions" not in it["request"]["uri"]:
                continue
            body = resp.get("parsed_body")
            text = (resp.get("body") or {}).get("string") if isinstance(resp.get("body"),
                                                                        dict) else None
            if isinstance(body, dict) and "reasoning_details" in json.dumps(body):
                _shapes_of(body, bodies, details=details)
            elif isinstance(text, str) and '"reasoning"' in text:
                for ln in text.splitlines():
                    if ln.startswith("data: {"):
                        _shapes_of(json.loads(ln[6:]), streams, details=details)
    return bodies, streams, details


def _check(ours: Shapes, real: Shapes, what: str) -> None:
    for level, sets in ours.items():
        assert level in real, f"{what}: the real traffic has no {level!r}"
        union = frozenset().union(*real[level])
        common = frozenset.intersection(*real[level])
        for keys in sets:
            assert keys <= union, f"{what} {level}: keys never seen for real: {keys - union}"
            assert common <= keys, f"{what} {level}: missing real keys {common - keys}"


@pytest.mark.skipif(not REAL.is_dir(), reason=f"no recorded traffic at {REAL}")
def test_reasoning_shapes_match_real_traffic(client: httpx.Client) -> None:
    bodies, streams, details = _real_shapes()
    assert bodies and streams and {"detail:reasoning.text", "detail:reasoning.summary",
                                   "detail:reasoning.encrypted"} <= set(details)
    ours_b: Shapes = {}
    ours_s: Shapes = {}
    ours_d: Shapes = {}
    for model, extra in ((R1, {}), (GPT5, {}), (R1, {"max_tokens": 30}), (QWEN3, {})):
        _shapes_of(_ask(client, model, **extra), ours_b, details=ours_d)
        for ev in _events(client, model, **extra)[1]:
            _shapes_of(ev, ours_s, details=ours_d)
    assert {"message", "delta:reasoning", "error"} <= set(ours_b) | set(ours_s)
    _check(ours_b, bodies, "non-streamed")
    _check(ours_s, streams, "streamed")
    _check(ours_d, details, "reasoning_details")


# --- the openai SDK on the wire ---------------------------------------------------------------------

@pytest.fixture
def oai(loopback: SandboxServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=loopback.base_url, api_key=sandbox_key(), max_retries=0) as c:
        yield c


def test_openai_sdk_reads_reasoning(oai: openai.OpenAI) -> None:
    done = oai.chat.completions.create(model=R1, messages=[{"role": "user", "content": QUESTION}],
                                       extra_body={"reasoning": {"effort": "low"}})
    message = done.choices[0].message
    extra = message.model_extra or {}
    assert extra["reasoning"].startswith("[sandbox] Simulated reasoning")
    assert extra["reasoning_details"][0]["type"] == "reasoning.text"
    assert message.content and message.content.startswith("[sandbox] Simulated answer")
    assert done.usage is not None and done.usage.completion_tokens_details is not None
    assert 230 <= (done.usage.completion_tokens_details.reasoning_tokens or 0) <= 270


def test_openai_sdk_streams_reasoning(oai: openai.OpenAI) -> None:
    stream = oai.chat.completions.create(model=GPT5, stream=True,
                                         messages=[{"role": "user", "content": QUESTION}])
    chunks = list(stream)
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    reasoning = "".join((d.model_extra or {}).get("reasoning") or "" for d in deltas)
    content = "".join(d.content or "" for d in deltas)
    assert reasoning.startswith("**Thinking about") and content.startswith("[sandbox]")
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_openai_sdk_raises_on_token_limit_chunk(oai: openai.OpenAI) -> None:
    """The real exhaustion stream ends with an ``error`` chunk, which the SDK raises (§2.6)."""
    stream = oai.chat.completions.create(model=R1, stream=True, max_tokens=20,
                                         messages=[{"role": "user", "content": QUESTION}])
    seen: list[Any] = []
    with pytest.raises(openai.APIError, match="Token limit reached"):
        for chunk in stream:
            seen.append(chunk)
    assert seen[-1].choices[0].finish_reason == "length"
