"""Sandbox routing, auth, catalog and account endpoints."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from openrouter_nb.sandbox import CATALOG, Sandbox, SandboxTransport, sandbox_key
from openrouter_nb.sandbox.catalog import by_id

IMAGE = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}


def _client(sb: Sandbox | None = None, key: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key or sandbox_key()}"}
    return httpx.Client(transport=SandboxTransport(sb or Sandbox()), headers=headers,
                        base_url="http://sandbox.test/api/v1")


def _body(model: str = "openrouter/free", text: str = "What is a black hole?",
          **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


def _served(sb: Sandbox, n: int, **extra: Any) -> list[str]:
    client = _client(sb)
    return [client.post("/chat/completions", json=_body(**extra)).json()["model"]
            for _ in range(n)]


def test_catalog_fixture_shape() -> None:
    free = [m for m in CATALOG if m.id.endswith(":free")]
    assert len(free) >= 8
    for m in free:
        twin = by_id(m.canonical_slug)
        assert twin is not None and float(twin.prompt_price) > 0
        assert 200 <= m.latency_ms <= 2500 and 0 <= m.reliability <= 1
    assert any(m.vision for m in free) and any(m.data_policy == "trains" for m in free)
    api = {m["id"]: m for m in _client().get("/models").json()["data"]}
    assert api["openrouter/free"]["pricing"]["prompt"] == "0"
    assert api["openrouter/auto"]["pricing"]["prompt"] == "-1"
    assert any(i.startswith("~") for i in api)
    assert api["openrouter/horizon-beta"]["pricing"] == {"prompt": "0", "completion": "0"}
    assert "latency_ms" not in api["openai/gpt-oss-20b:free"]


def test_models_needs_no_auth_and_endpoints() -> None:
    client = httpx.Client(transport=SandboxTransport(), base_url="http://t/api/v1")
    assert client.get("/models").status_code == 200
    r = client.get("/models/google/gemma-3-27b-it/endpoints")
    eps = r.json()["data"]["endpoints"]
    assert {e["model_id"] for e in eps} == {"google/gemma-3-27b-it",
                                            "google/gemma-3-27b-it:free"}
    assert client.get("/models/nobody/nothing/endpoints").status_code == 404


def test_free_router_pick_is_seeded_and_varies() -> None:
    first = _served(Sandbox(seed=7), 12)
    assert first == _served(Sandbox(seed=7), 12)
    assert len(set(first)) > 2
    assert all(m.endswith(":free") for m in first)
    assert first != _served(Sandbox(seed=8), 12)


def test_free_router_filters_by_capability() -> None:
    sb = Sandbox(seed=1, rpm=100)
    vision = _served(sb, 8, messages=[{"role": "user", "content": [
        {"type": "text", "text": "what is this?"}, IMAGE]}])
    assert all(by_id(m).vision for m in vision)  # type: ignore[union-attr]
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    assert all(by_id(m).tools for m in _served(sb, 8, tools=tools))  # type: ignore[union-attr]
    rf = {"type": "json_object"}
    assert all(by_id(m).structured  # type: ignore[union-attr]
               for m in _served(sb, 8, response_format=rf))
    r = _client(sb).post("/chat/completions", json=_body())
    gen = r.headers["X-Generation-Id"]
    client = _client(sb)
    assert client.get("/generation", params={"id": gen}).status_code == 404  # first poll
    data = client.get("/generation", params={"id": gen}).json()["data"]
    assert data["router"] == "openrouter/free" and data["model"] == r.json()["model"]


def test_aliases_and_auto_report_the_served_model() -> None:
    client = _client()
    r = client.post("/chat/completions", json=_body("~google/gemini-flash-latest"))
    assert r.json()["model"] == "google/gemini-2.0-flash-exp"
    r = client.post("/chat/completions", json=_body("openrouter/auto"))
    assert by_id(r.json()["model"]).prompt_price not in ("0", "-1")  # type: ignore[union-attr]
    assert r.json()["usage"]["cost"] > 0


def test_models_array_limit_and_unknown_model() -> None:
    client = _client()
    r = client.post("/chat/completions", json={
        "models": ["a/b:free", "c/d:free", "e/f:free", "g/h:free"],
        "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 400
    assert r.json()["error"]["message"] == "'models' array must have 3 items or fewer."
    r = client.post("/chat/completions", json=_body("openai/gpt-99:free"))
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["message"] == "openai/gpt-99:free is not a valid model ID"
    assert err["availability"]["code"] == "model_not_found"


@pytest.mark.parametrize("body", [{"model": "openrouter/free"},
                                  {"model": "openrouter/free", "messages": []}])
def test_missing_messages_is_400(body: dict[str, Any]) -> None:
    assert _client().post("/chat/completions", json=body).status_code == 400


def test_auth_errors() -> None:
    bare = httpx.Client(transport=SandboxTransport(), base_url="http://t/api/v1")
    for path in ("/key", "/auth/key", "/credits", "/generation?id=x"):
        r = bare.get(path)
        assert r.status_code == 401
        assert r.json() == {"error": {"message": "No auth credentials found", "code": 401}}
    r = bare.post("/chat/completions", json=_body(),
                  headers={"Authorization": "Bearer sk-or-v1-short"})
    assert r.status_code == 401 and r.json()["error"]["message"] == "User not found."
    assert bare.get("/nowhere").status_code == 404


def test_key_credits_and_privacy() -> None:
    sb = Sandbox()
    client = _client(sb)
    data = client.get("/key").json()["data"]
    key = sandbox_key()
    assert data["label"] == f"{key[:12]}...{key[-3:]}" and key not in str(data)
    assert data["rate_limit"]["requests"] == -1
    r = client.get("/credits")
    assert r.status_code == 403
    assert r.json()["error"]["message"] == "Only management keys can perform this operation"
    deny = client.post("/chat/completions", json=_body(
        "google/gemma-3-27b-it:free", provider={"data_collection": "deny"}))
    assert deny.status_code == 404
    assert deny.json()["error"]["availability"]["code"] == "privacy_restricted"
    ok = client.post("/chat/completions", json=_body(provider={"data_collection": "deny"}))
    assert by_id(ok.json()["model"]).data_policy != "trains"  # type: ignore[union-attr]
    zdr = client.post("/chat/completions", json=_body(provider={"zdr": True}))
    assert zdr.status_code == 404  # no free endpoint is zero-retention
    no_vision = client.post("/chat/completions", json=_body(
        "qwen/qwen3-coder:free", messages=[{"role": "user", "content": [IMAGE]}]))
    assert no_vision.status_code == 404


def test_answers_are_deterministic_and_recorded() -> None:
    body = _body("openai/gpt-oss-20b:free", "Summarise the French revolution", max_tokens=6)
    a = _client(Sandbox(seed=2)).post("/chat/completions", json=body).json()
    sb = Sandbox(seed=2)
    b = _client(sb).post("/chat/completions", json=body,
                         headers={"HTTP-Referer": "https://example.org"}).json()
    assert a["choices"] == b["choices"]
    assert a["choices"][0]["finish_reason"] == "length"
    assert a["usage"]["completion_tokens"] == 6
    full = _client(sb).post("/chat/completions", json=_body(
        "openai/gpt-oss-20b:free", "Summarise the French revolution")).json()
    text = full["choices"][0]["message"]["content"]
    assert text.startswith("[sandbox]") and "French revolution" in text
    assert full["id"].startswith("gen-") and len(full["id"].split("-")[2]) == 20
    rec = sb.requests[0]
    assert rec.json["max_tokens"] == 6 and rec.headers["HTTP-Referer"] == "https://example.org"
    assert rec.status == 200 and rec.model == "openai/gpt-oss-20b:free"
    assert rec.t_end is not None and rec.perf_end is not None


def test_tool_call_answer() -> None:
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
    r = _client().post("/chat/completions", json=_body(
        "z-ai/glm-4.5-air:free", "What is the weather in Oslo?", tools=tools))
    choice = r.json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    call = choice["message"]["tool_calls"][0]
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "Oslo"}
    # a question no tool's name or description matches is answered in words
    r = _client().post("/chat/completions", json=_body("z-ai/glm-4.5-air:free", tools=tools))
    assert r.json()["choices"][0]["finish_reason"] == "stop"


def test_leading_whitespace_mode() -> None:
    r = _client(Sandbox(leading_whitespace=True)).post("/chat/completions", json=_body())
    assert r.content.startswith(b"\n") and r.json()["object"] == "chat.completion"


def test_malformed_input_is_a_400_not_a_crash() -> None:
    client = _client()
    r = client.post("/chat/completions", json=_body(),
                    headers={"X-Sandbox-Answer-Tokens": "many"})
    assert r.status_code == 400
    r = client.post("/chat/completions", content=b"{not json",
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    r = client.post("/chat/completions", json={"messages": [{"role": "user", "content": 5}]})
    assert r.status_code == 200  # odd content is tolerated, the default model answers
