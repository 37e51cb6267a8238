"""Our client against real recorded OpenRouter exchanges (VCR cassettes of public projects).

The cassettes live outside this repository (``../shared/real-traffic`` beside the checkout,
or ``$OPENROUTER_NB_REAL_TRAFFIC``); on a machine without them these tests skip. Each
chat-completions exchange is replayed through ``httpx.MockTransport`` into our client, and
what the client returns is checked against an independent reading of the recorded body.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from openrouter_nb.api.client import OpenRouterClient
from openrouter_nb.api.errors import OpenRouterError, TruncatedError
from openrouter_nb.api.types import ChatResult

yaml = pytest.importorskip("yaml")

_DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "real-traffic"
ROOT = Path(os.environ.get("OPENROUTER_NB_REAL_TRAFFIC", _DEFAULT))


def _exchanges() -> list[Any]:
    if not ROOT.is_dir():
        return []
    found = []
    for path in sorted(ROOT.glob("*/*.yaml")):
        data = yaml.safe_load(path.read_text())
        for number, interaction in enumerate(data.get("interactions") or []):
            if "chat/completions" in interaction["request"]["uri"]:
                found.append(pytest.param(interaction, id=f"{path.stem[-60:]}#{number}"))
    return found


EXCHANGES = _exchanges()
pytestmark = pytest.mark.skipif(not EXCHANGES, reason=f"no recorded traffic at {ROOT}")


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, list) and value else value


def _body_text(part: dict[str, Any]) -> str:
    if "parsed_body" in part and part["parsed_body"] is not None:
        return json.dumps(part["parsed_body"])
    body = part.get("body")
    if isinstance(body, dict):
        body = body.get("string")
    return body or ""


def _replay(interaction: dict[str, Any]) -> httpx.MockTransport:
    response = interaction["response"]
    status = response["status"]["code"]
    headers = {k: _first(v) for k, v in (response.get("headers") or {}).items()
               if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")}
    text = _body_text(response)
    return httpx.MockTransport(lambda request: httpx.Response(status, headers=headers,
                                                              content=text.encode()))


def _naive_stream(sse: str) -> dict[str, Any]:
    """What a recorded SSE body holds, read naively (independent of our decoder and merger)."""
    seen: dict[str, Any] = {"text": [], "reasoning": [], "details": [], "tools": {},
                            "finish": [], "error": False, "model": None}
    for line in sse.splitlines():
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        chunk = json.loads(line[6:])
        seen["model"] = chunk.get("model") or seen["model"]
        seen["error"] = seen["error"] or "error" in chunk
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            seen["text"].append(delta.get("content") or "")
            seen["reasoning"].append(delta.get("reasoning") or "")
            seen["details"].extend(delta.get("reasoning_details") or [])
            for call in delta.get("tool_calls") or []:
                slot = seen["tools"].setdefault(call["index"], {"id": None, "name": None, "args": ""})
                slot["id"] = call.get("id") or slot["id"]
                function = call.get("function") or {}
                slot["name"] = function.get("name") or slot["name"]
                slot["args"] += function.get("arguments") or ""
            if choice.get("finish_reason"):
                seen["finish"].append(choice["finish_reason"])
    seen["text"], seen["reasoning"] = "".join(seen["text"]), "".join(seen["reasoning"])
    return seen


def _naive_message(body: dict[str, Any]) -> dict[str, Any]:
    """The recorded non-streamed message, tool calls keyed by index like a stream's."""
    message = body["choices"][0]["message"]
    content = message.get("content") or ""
    if isinstance(content, list):
        content = "".join(part.get("text", "") for part in content if part.get("type") == "text")
    tools = {call.get("index", n): {"id": call.get("id"), "name": call["function"].get("name"),
                                    "args": call["function"].get("arguments") or ""}
             for n, call in enumerate(message.get("tool_calls") or [])}
    return {"text": content, "reasoning": message.get("reasoning") or "",
            "details": message.get("reasoning_details") or [], "tools": tools}


def _check_reasoning(result: ChatResult, seen: dict[str, Any], streamed: bool) -> bool:
    """The answer exposes the recorded reasoning; whether there was any."""
    if seen["reasoning"]:
        assert result.reasoning == seen["reasoning"]
    if not streamed:
        assert list(result.reasoning_details) == seen["details"]  # unmodified (§2.7)
    elif seen["details"]:
        texts = "".join(d.get("text") or "" for d in seen["details"]
                        if d.get("type") == "reasoning.text")
        merged = "".join(d.get("text") or "" for d in result.reasoning_details
                         if d.get("type") == "reasoning.text")
        assert merged == texts
        signed = [d["signature"] for d in seen["details"] if d.get("signature")]
        assert [d["signature"] for d in result.reasoning_details if d.get("signature")] == signed
        whole = [d for d in seen["details"] if d.get("type") == "reasoning.encrypted"]
        assert [d for d in result.reasoning_details if d["type"] == "reasoning.encrypted"] == whole
    has_reasoning = bool(seen["reasoning"] or seen["details"])
    if has_reasoning:
        assert result.reasoning or result.reasoning_details
    return has_reasoning


def _check_tool_calls(result: ChatResult, seen: dict[str, Any]) -> bool:
    """The answer's tool calls are the recorded ones; whether there were any."""
    expected = [(index, slot["id"], slot["name"], slot["args"] or "{}")
                for index, slot in sorted(seen["tools"].items())]
    assert [(c.index, c.id, c.name, c.arguments) for c in result.tool_calls] == expected
    if expected:
        wire = result.assistant_message()["tool_calls"]
        assert [call["id"] for call in wire] == [row[1] for row in expected]
        assert all("index" not in call for call in wire)
    return bool(expected)


def _read(interaction: dict[str, Any]) -> set[str]:
    """Replay one exchange through the client, check what it returns; say what it held
    (``answer``, ``error``, ``truncated``, plus ``reasoning``, ``tool_calls``)."""
    request_body = json.loads(_body_text(interaction["request"]) or "{}")
    response = interaction["response"]
    status = response["status"]["code"]
    client = OpenRouterClient("sk-or-v1-test", "https://openrouter.ai/api/v1",
                              transport=_replay(interaction))
    text = _body_text(response)
    if status >= 400:
        with pytest.raises(OpenRouterError) as info:
            client.chat(request_body)
        assert info.value.http_status == status
        return {"error"}
    streamed = bool(request_body.get("stream"))
    seen = _naive_stream(text) if streamed else _naive_message(json.loads(text))
    if streamed and seen["error"]:
        return _read_stream_error(client, request_body, seen)
    result = client.chat(request_body)
    assert result.text == seen["text"]
    assert result.usage is not None
    if streamed:
        assert result.model == seen["model"]
        assert result.usage.total_tokens
    else:
        recorded = json.loads(text)
        choice = recorded["choices"][0]
        assert result.model == recorded["model"]
        assert result.provider == recorded.get("provider")
        assert result.usage.total_tokens == recorded["usage"]["total_tokens"]
        assert result.native_finish_reason == choice.get("native_finish_reason")
        assert list(result.annotations) == (choice["message"].get("annotations") or [])
        details = recorded["usage"].get("completion_tokens_details") or {}
        assert result.usage.reasoning_tokens == details.get("reasoning_tokens")
    tags = {"answer"}
    if _check_reasoning(result, seen, streamed):
        tags.add("reasoning")
    if _check_tool_calls(result, seen):
        tags.add("tool_calls")
    return tags


def _read_stream_error(client: OpenRouterClient, request_body: dict[str, Any],
                       seen: dict[str, Any]) -> set[str]:
    # An error event inside a 200 stream surfaces as an error, never as an answer; after a
    # finish "length" with no text it is the cut at max_tokens, reasoning kept (§2.6).
    with pytest.raises(OpenRouterError) as info:
        client.chat(request_body)
    assert info.value.message
    if "length" in seen["finish"] and not seen["text"]:
        assert isinstance(info.value, TruncatedError)
        result = info.value.result
        assert result is not None and result.finish_reason == "length"
        assert result.usage is not None and result.usage.total_tokens
        assert info.value.partial_text == seen["reasoning"]
        return {"truncated", "reasoning"} if _check_reasoning(result, seen, True) else {"truncated"}
    return {"error"}


@pytest.mark.parametrize("interaction", EXCHANGES)
def test_client_reads_recorded_exchange(interaction: dict[str, Any]) -> None:
    _read(interaction)


def test_recorded_reasoning_and_tool_calls_are_all_exposed() -> None:
    """Every exchange read again and tallied: every reasoning answer shows its reasoning,
    every tool-call answer its calls, and the corpus still holds as many of each."""
    tally = Counter(tag for param in EXCHANGES for tag in _read(param.values[0]))
    print(f"\nreal traffic: {len(EXCHANGES)} chat exchanges read: {dict(sorted(tally.items()))}")
    assert len(EXCHANGES) >= 62
    assert tally["answer"] + tally["error"] + tally["truncated"] == len(EXCHANGES)
    assert tally["reasoning"] >= 15 and tally["truncated"] >= 1
    assert tally["tool_calls"] >= 5
