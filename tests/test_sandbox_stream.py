"""SSE framing of the sandbox, read raw over the loopback server, and simulated latency."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from openrouter_nb.sandbox import Sandbox, SandboxServer, SandboxTransport, sandbox_key

MODEL = "mistralai/mistral-small-3.2-24b-instruct:free"
AUTH = {"Authorization": f"Bearer {sandbox_key()}"}


@pytest.fixture
def server() -> Iterator[SandboxServer]:
    with SandboxServer(Sandbox(seed=5)) as srv:
        yield srv


def _lines(base_url: str, headers: dict[str, str] | None = None, **extra: Any
           ) -> tuple[httpx.Response, list[str]]:
    body = {"model": MODEL, "stream": True,
            "messages": [{"role": "user", "content": "Explain rainbows"}], **extra}
    with httpx.Client(base_url=base_url, headers=AUTH, timeout=5) as client, \
            client.stream("POST", "/chat/completions", json=body, headers=headers) as r:
        return r, list(r.iter_lines())


def _events(lines: list[str]) -> list[Any]:
    return [json.loads(ln[6:]) for ln in lines if ln.startswith("data: {")]


def test_stream_framing(server: SandboxServer) -> None:
    r, lines = _lines(server.base_url)
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/event-stream"
    assert r.headers["transfer-encoding"] == "chunked"
    assert lines[0] == ": OPENROUTER PROCESSING"
    assert lines.count(": OPENROUTER PROCESSING") == 2  # one leading, one mid-stream
    assert lines[-2:] == ["data: [DONE]", ""]
    frames = [ln for ln in lines if ln]
    assert all(ln.startswith(("data: ", ": ")) for ln in frames)
    assert all(lines[i + 1] == "" for i, ln in enumerate(lines) if ln)  # "\n\n" after each
    events = _events(lines)
    first, *middle, final, usage = events
    assert first["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    for ev in events:
        assert ev["object"] == "chat.completion.chunk" and ev["model"] == MODEL
        assert ev["provider"] == "Chutes" and ev["id"] == r.headers["x-generation-id"]
    assert all(ev["choices"][0]["finish_reason"] is None for ev in middle)
    assert all(ev["choices"][0]["native_finish_reason"] is None for ev in middle)
    assert final["choices"][0]["finish_reason"] == "stop"
    assert usage["choices"] == []
    assert usage["usage"]["completion_tokens"] == len(middle)
    text = "".join(ev["choices"][0]["delta"]["content"] for ev in middle)
    assert text.startswith("[sandbox]") and "rainbows" in text
    assert "x-ratelimit-limit" not in r.headers


def test_stream_usage_in_last_delta_and_no_comments() -> None:
    with SandboxServer(usage_in_last_delta=True, processing_comments=False) as srv:
        _, lines = _lines(srv.base_url, max_tokens=3)
    assert not any(ln.startswith(":") for ln in lines)
    events = _events(lines)
    assert events[-1]["choices"][0]["finish_reason"] == "length"
    assert events[-1]["usage"]["completion_tokens"] == 3
    assert all("usage" not in ev for ev in events[:-1])


def test_forced_answer_tokens(server: SandboxServer) -> None:
    _, lines = _lines(server.base_url, {"X-Sandbox-Answer-Tokens": "2000"})
    events = _events(lines)
    assert len(events) == 2000 + 3
    assert events[-1]["usage"]["completion_tokens"] == 2000


@pytest.mark.parametrize(("fault", "done"), [("midstream_error", False),
                                             ("midstream_error_done", True)])
def test_midstream_error(server: SandboxServer, fault: str, done: bool) -> None:
    r, lines = _lines(server.base_url, {"X-Sandbox-Fault": fault})
    assert r.status_code == 200
    events = _events(lines)
    err = events[-1]
    assert err["error"] == {"code": 502,
                            "message": "Upstream provider error: connection reset mid-stream",
                            "metadata": {"error_type": "provider_unavailable"}}
    assert err["provider"] == "Chutes" and err["choices"][0]["finish_reason"] == "error"
    assert any(ev["choices"][0]["delta"].get("content") for ev in events[:-1])
    assert ("data: [DONE]" in lines) is done


def test_truncated_stream(server: SandboxServer) -> None:
    _, lines = _lines(server.base_url, {"X-Sandbox-Fault": "truncated_stream"})
    events = _events(lines)
    assert len(events) >= 2 and "data: [DONE]" not in lines
    assert all(ev["choices"][0]["finish_reason"] is None for ev in events)


def test_stream_error_before_first_token_is_plain_http(server: SandboxServer) -> None:
    r, lines = _lines(server.base_url, {"X-Sandbox-Fault": "upstream_429"})
    assert r.status_code == 429 and r.headers["content-type"] == "application/json"
    assert json.loads("".join(lines))["error"]["message"] == "Provider returned error"


def test_latency_is_spread_over_the_stream() -> None:
    sb = Sandbox(latency_ms=300)
    client = httpx.Client(transport=SandboxTransport(sb), base_url="http://t/api/v1",
                          headers=AUTH)
    body = {"model": MODEL, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    t0 = time.perf_counter()
    with client.stream("POST", "/chat/completions", json=body) as r:
        t_headers = time.perf_counter() - t0
        stamps = [time.perf_counter() - t0 for ln in r.iter_lines() if ln.startswith("data: {")]
    assert t_headers < 0.1  # headers come at once; the wait is inside the stream
    assert 0.1 <= stamps[1] < 0.3  # first content token after ~40 % of the latency
    assert 0.28 <= stamps[-1] < 0.6
    rec = sb.requests[-1]
    assert rec.perf_end is not None and rec.perf_end - rec.perf_start >= 0.28


def test_latency_header_and_no_sleep_by_default() -> None:
    slept: list[float] = []
    sb = Sandbox(sleep=slept.append)
    client = httpx.Client(transport=SandboxTransport(sb), base_url="http://t/api/v1",
                          headers=AUTH)
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    client.post("/chat/completions", json=body)
    assert slept == []
    client.post("/chat/completions", json=body, headers={"X-Sandbox-Latency-Ms": "1500"})
    assert slept == [1.5]
    sb.model_latency = True
    client.post("/chat/completions", json=body)
    assert slept[-1] == 0.7  # the model's typical latency


def test_split_frames_still_parse() -> None:
    with SandboxServer(split_frames=True) as srv:
        _, lines = _lines(srv.base_url)
    assert lines[-2:] == ["data: [DONE]", ""]
    assert _events(lines)[-1]["usage"]["completion_tokens"] > 0
