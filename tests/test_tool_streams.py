"""Streamed tool calls merged by index, from the sandbox and from recorded real traffic.

The recorded exchanges (``../shared/real-traffic``, or ``$OPENROUTER_NB_REAL_TRAFFIC``) that
hold tool calls are replayed through the client; each merged call must equal an independent
naive reading of the recording, and, for streams, the ``tool_call`` deltas handed to
``on_delta`` must add up to the same arguments. Skipped where the recordings are absent.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from openrouter_nb.api.client import OpenRouterClient
from openrouter_nb.api.types import StreamDelta
from openrouter_nb.sandbox import Sandbox, SandboxTransport, sandbox_key
from openrouter_nb.sandbox.tooluse import stream_fragments

yaml = pytest.importorskip("yaml")

_DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "real-traffic"
ROOT = Path(os.environ.get("OPENROUTER_NB_REAL_TRAFFIC", _DEFAULT))


def _text(part: dict[str, Any]) -> str:
    if part.get("parsed_body") is not None:
        return json.dumps(part["parsed_body"])
    body = part.get("body")
    return (body.get("string") if isinstance(body, dict) else body) or ""


def _tool_exchanges() -> list[Any]:
    found = []
    for path in sorted(ROOT.glob("*/*.yaml")) if ROOT.is_dir() else ():
        data = yaml.safe_load(path.read_text())
        for number, interaction in enumerate(data.get("interactions") or []):
            response = interaction["response"]
            if ("chat/completions" in interaction["request"]["uri"]
                    and response["status"]["code"] == 200 and _holds_calls(interaction)):
                found.append(pytest.param(interaction, id=f"{path.stem[-50:]}#{number}"))
    return found


def _holds_calls(interaction: dict[str, Any]) -> bool:
    """Whether the recorded answer holds function tool calls (read naively)."""
    body = _text(interaction["response"])
    if "tool_calls" not in body:
        return False
    streamed = bool(json.loads(_text(interaction["request"]) or "{}").get("stream"))
    return bool(_naive(body, streamed))



def _naive(body: str, streamed: bool) -> dict[int, tuple[str | None, str | None, str]]:
    calls: dict[int, list[Any]] = {}
    if not streamed:
        message = json.loads(body)["choices"][0]["message"]
        for n, call in enumerate(message.get("tool_calls") or []):
            fn = call.get("function") or {}
            calls[call.get("index", n)] = [call.get("id"), fn.get("name"),
                                           fn.get("arguments") or ""]
    for line in body.splitlines() if streamed else ():
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        for choice in json.loads(line[6:]).get("choices") or []:
            for call in (choice.get("delta") or {}).get("tool_calls") or []:
                slot = calls.setdefault(call["index"], [None, None, ""])
                fn = call.get("function") or {}
                slot[0] = call.get("id") or slot[0]
                slot[1] = fn.get("name") or slot[1]
                slot[2] += fn.get("arguments") or ""
    return {i: (c[0], c[1], c[2] or "{}") for i, c in calls.items()}


EXCHANGES = _tool_exchanges()


def _replay(interaction: dict[str, Any]) -> tuple[bool, int]:
    """(whether every call read right, how many calls) for one recorded exchange."""
    request = json.loads(_text(interaction["request"]) or "{}")
    response = interaction["response"]
    body = _text(response)
    headers = {k: v[0] if isinstance(v, list) else v for k, v in
               (response.get("headers") or {}).items()
               if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")}
    client = OpenRouterClient("sk-or-v1-test", "https://openrouter.ai/api/v1",
                              transport=httpx.MockTransport(
                                  lambda _r: httpx.Response(200, headers=headers,
                                                            content=body.encode())))
    deltas: list[StreamDelta] = []
    streamed = bool(request.get("stream"))
    result = client.chat(request, on_delta=deltas.append)
    expected = _naive(body, streamed)
    merged = {c.index: (c.id, c.name, c.arguments) for c in result.tool_calls}
    right = merged == expected
    if streamed:
        pieces: dict[int, str] = {}
        for delta in deltas:
            if delta.kind == "tool_call":
                pieces[delta.tool_index or 0] = pieces.get(delta.tool_index or 0, "") + delta.text
        right = right and {i: p or "{}" for i, p in pieces.items()} == {
            i: args for i, (_id, _name, args) in expected.items()}
    return right, len(expected)


@pytest.mark.skipif(not EXCHANGES, reason=f"no recorded tool-call traffic at {ROOT}")
@pytest.mark.parametrize("interaction", EXCHANGES)
def test_recorded_tool_calls_merge_right(interaction: dict[str, Any]) -> None:
    right, calls = _replay(interaction)
    assert right and calls >= 1


@pytest.mark.skipif(not EXCHANGES, reason=f"no recorded tool-call traffic at {ROOT}")
def test_report_how_many_recorded_tool_exchanges_read_right() -> None:
    results = [_replay(param.values[0]) for param in EXCHANGES]
    streamed = sum(bool(json.loads(_text(p.values[0]["request"]) or "{}").get("stream"))
                   for p in EXCHANGES)
    right = sum(ok for ok, _ in results)
    print(f"\nreal tool-call traffic: {right} of {len(results)} exchanges read right "
          f"({streamed} streamed), {sum(n for _, n in results)} tool calls")
    assert right == len(results) >= 5


def test_sandbox_streams_cut_arguments_and_interleave_parallel_calls() -> None:
    calls = [{"index": 0, "id": "call_a", "type": "function",
              "function": {"name": "weather", "arguments": '{"city": "Oslo"}'}},
             {"index": 1, "id": "call_b", "type": "function",
              "function": {"name": "tabs", "arguments": ""}}]
    deltas = [d["tool_calls"][0] for d in stream_fragments(calls)]
    assert deltas[0] == {"index": 0, "id": "call_a", "type": "function",
                         "function": {"name": "weather", "arguments": ""}}
    assert deltas[1]["index"] == 1 and deltas[1]["function"]["arguments"] == ""  # all-empty
    pieces = [d["function"]["arguments"] for d in deltas[2:]]
    assert len(pieces) == 3 and "".join(pieces) == '{"city": "Oslo"}'
    assert all("id" not in d and "name" not in d["function"] for d in deltas[2:])


def test_the_client_merges_a_sandbox_stream_of_parallel_calls() -> None:
    tools = [{"type": "function", "function": {
        "name": name, "description": f"Look up the {name} of a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                       "required": ["city"]}}} for name in ("weather", "population")]
    client = OpenRouterClient(sandbox_key("streams"), "https://sandbox.invalid/api/v1",
                              transport=SandboxTransport(Sandbox(seed=3)))
    deltas: list[StreamDelta] = []
    result = client.chat({"model": "z-ai/glm-4.5-air:free", "stream": True, "tools": tools,
                          "messages": [{"role": "user", "content":
                                        "The weather and population of Oslo, please"}]},
                         on_delta=deltas.append)
    assert result.finish_reason == "tool_calls"
    assert [(c.index, c.name, json.loads(c.arguments)) for c in result.tool_calls] == [
        (0, "weather", {"city": "Oslo"}), (1, "population", {"city": "Oslo"})]
    indexes = [d.tool_index for d in deltas if d.kind == "tool_call"]
    assert indexes[:4] == [0, 1, 0, 1]  # interleaved
