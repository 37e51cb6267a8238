"""Sandbox speed: instant by default, realistic on request, every wait through the injected
sleep (so the timings below are exact and nothing really waits)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest

from openrouter_nb.sandbox import Sandbox, SandboxServer, SandboxTransport, sandbox_key
from openrouter_nb.sandbox.catalog import by_id

from .conftest import FakeClock

R1 = "deepseek/deepseek-r1-0528:free"  # 1400 ms first token, 75 tokens/s
FAST = "nvidia/nemotron-nano-9b-v2:free"  # 300 ms, 133 tokens/s
SLOW = "deepseek/deepseek-chat-v3.1:free"  # 2500 ms, 16 tokens/s: bounded to 1.5 s, 30/s
AUTH = {"Authorization": f"Bearer {sandbox_key()}"}


def _client(sb: Sandbox) -> httpx.Client:
    return httpx.Client(transport=SandboxTransport(sb), base_url="http://t/api/v1",
                        headers=AUTH)


def _body(model: str, stream: bool = False, **extra: Any) -> dict[str, Any]:
    return {"model": model, "stream": stream,
            "messages": [{"role": "user", "content": "What is an API rate limit?"}], **extra}


def _stream(client: httpx.Client, clock: FakeClock, model: str,
            headers: dict[str, str] | None = None, **extra: Any
            ) -> tuple[float, list[tuple[float, str]], dict[str, Any]]:
    """(time the headers came, [(time, raw line)] of each frame, the usage)."""
    t0 = clock()
    with client.stream("POST", "/chat/completions", json=_body(model, True, **extra),
                       headers=headers) as r:
        t_headers = clock() - t0
        lines = [(clock() - t0, ln) for ln in r.iter_lines() if ln]
    usage = next(json.loads(ln[6:])["usage"] for _, ln in reversed(lines)
                 if ln.startswith("data: {") and '"usage"' in ln)
    return t_headers, lines, usage


@pytest.fixture
def realistic(clock: FakeClock) -> Sandbox:
    return Sandbox(seed=1, rpm=1000, speed="realistic", clock=clock, sleep=clock.sleep)


def test_instant_is_the_default_and_never_waits(clock: FakeClock) -> None:
    sb = Sandbox(clock=clock, sleep=clock.sleep)
    assert sb.speed == "instant"
    client = _client(sb)
    client.post("/chat/completions", json=_body(R1))
    _stream(client, clock, R1)
    assert clock.slept == []


def test_realistic_non_streamed_waits_the_whole_answer(realistic: Sandbox,
                                                       clock: FakeClock) -> None:
    client = _client(realistic)
    obj = client.post("/chat/completions", json=_body(R1)).json()
    n = obj["usage"]["completion_tokens"]
    assert obj["usage"]["completion_tokens_details"]["reasoning_tokens"] > 800
    assert clock.slept == [1.4 + n * (1 / 75)]  # first token, then every token, thinking too
    assert realistic.requests[-1].t_end == realistic.requests[-1].t_start + clock.slept[0]


def test_realistic_stream_paces_every_chunk(realistic: Sandbox, clock: FakeClock) -> None:
    t_headers, lines, usage = _stream(_client(realistic), clock, R1)
    n = usage["completion_tokens"]
    assert t_headers == 0  # headers at once; the waiting happens inside the stream
    assert clock.slept == [1.4] + [1 / 75] * n
    data = [(t, ln) for t, ln in lines if ln.startswith("data: {")]
    assert data[0][0] == pytest.approx(1.4)  # the role chunk after the first-token delay
    assert data[1][0] == pytest.approx(1.4 + 1 / 75)  # the first reasoning token
    assert '"reasoning":"[sandbox' in data[1][1]
    assert data[-1][0] == pytest.approx(1.4 + n / 75)
    rec = realistic.requests[-1]
    assert rec.t_end is not None and rec.t_end - rec.t_start == pytest.approx(1.4 + n / 75)


def test_excluded_reasoning_still_takes_its_time(realistic: Sandbox, clock: FakeClock) -> None:
    _, lines, usage = _stream(_client(realistic), clock, R1, reasoning={"exclude": True})
    thought = usage["completion_tokens_details"]["reasoning_tokens"]
    answer = usage["completion_tokens"] - thought
    assert clock.slept == [1.4, thought * (1 / 75)] + [1 / 75] * answer
    waiting = [ln for _, ln in lines][:4]
    assert waiting[2] == ": OPENROUTER PROCESSING"  # a keep-alive while it thinks unseen


def test_openai_style_summary_then_hidden_thinking(clock: FakeClock) -> None:
    sb = Sandbox(speed="realistic", clock=clock, sleep=clock.sleep)
    _, _, usage = _stream(_client(sb), clock, "openai/gpt-5-mini", reasoning={"effort": "low"})
    thought = usage["completion_tokens_details"]["reasoning_tokens"]
    answer = usage["completion_tokens"] - thought
    per = 1 / 80
    assert clock.slept == [1.3] + [per] * 40 + [(thought - 40) * per] + [per] * answer


@pytest.mark.parametrize(("model", "first", "per_token"), [
    (FAST, 0.3, 1 / (40000 / 300)), (SLOW, 1.5, 1 / 30),
    ("google/gemma-3-27b-it:free", 1.2, 1 / (40000 / 1200)),
])
def test_speed_follows_the_catalog_within_bounds(clock: FakeClock, model: str, first: float,
                                                 per_token: float) -> None:
    sb = Sandbox(speed="realistic", clock=clock, sleep=clock.sleep)
    _, _, usage = _stream(_client(sb), clock, model)
    assert clock.slept == [first] + [per_token] * usage["completion_tokens"]


def test_provider_sort_by_throughput_streams_faster(clock: FakeClock) -> None:
    sb = Sandbox(speed="realistic", clock=clock, sleep=clock.sleep)
    client = _client(sb)
    model = "openai/gpt-oss-20b:free"  # DeepInfra 100 tokens/s, or DeepInfra Turbo 220/s
    client.post("/chat/completions", json=_body(model))
    default = clock.slept.pop()
    client.post("/chat/completions", json=_body(model, provider={"sort": "throughput"}))
    assert clock.slept.pop() < default
    endpoints = client.get("/models/openai/gpt-oss-20b/endpoints").json()["data"]["endpoints"]
    turbo = next(e for e in endpoints if e["tag"] == "deepinfra/turbo")
    assert turbo["throughput_last_30m"]["p50"] == 220.0


def test_request_headers_override_the_speed(clock: FakeClock) -> None:
    sb = Sandbox(clock=clock, sleep=clock.sleep)
    client = _client(sb)
    client.post("/chat/completions", json=_body(FAST), headers={"X-Sandbox-Speed": "realistic"})
    assert len(clock.slept) == 1 and clock.slept[0] > 0.3
    sb.speed = "realistic"
    client.post("/chat/completions", json=_body(FAST), headers={"X-Sandbox-Speed": "instant"})
    client.post("/chat/completions", json=_body(FAST), headers={"X-Sandbox-Latency-Ms": "250"})
    assert clock.slept[1:] == [0.25]
    used = sb.quota.daily(sandbox_key())["used"]
    r = client.post("/chat/completions", json=_body(FAST), headers={"X-Sandbox-Speed": "warp"})
    assert r.status_code == 400 and "unknown sandbox speed 'warp'" in r.json()["error"]["message"]
    assert sb.quota.daily(sandbox_key())["used"] == used  # a malformed request does not count


def test_fixed_latency_overrides_the_speed(clock: FakeClock) -> None:
    sb = Sandbox(speed="realistic", latency_ms=600, clock=clock, sleep=clock.sleep)
    client = _client(sb)
    client.post("/chat/completions", json=_body(R1))
    assert clock.slept == [0.6]
    _, _, usage = _stream(client, clock, R1)
    n = usage["completion_tokens"]
    assert clock.slept[1:] == [0.4 * 0.6] + [0.6 * 0.6 / n] * n  # 40 % first, 60 % spread
    sb.latency_ms, sb.model_latency = None, True
    client.post("/chat/completions", json=_body(R1))
    assert clock.slept[-1] == by_id(R1).latency_ms / 1000  # type: ignore[union-attr]


def test_speed_is_validated_and_settable() -> None:
    with pytest.raises(ValueError, match="unknown sandbox speed 'fast'; known: instant, "
                                         "realistic"):
        Sandbox(speed="fast")
    sb = Sandbox()
    with pytest.raises(ValueError, match="unknown sandbox speed"):
        sb.speed = "fast"
    assert sb.speed == "instant"
    assert SandboxTransport(speed="realistic").sandbox.speed == "realistic"
    with SandboxServer(speed="realistic") as srv:
        assert srv.sandbox.speed == "realistic"


def test_realistic_stream_over_loopback_really_streams() -> None:
    """With the real clock, chunks of a loopback stream arrive spread over time."""
    with SandboxServer(speed="realistic") as srv, \
            httpx.Client(base_url=srv.base_url, headers=AUTH, timeout=10) as client:
        t0 = time.perf_counter()
        with client.stream("POST", "/chat/completions", json=_body(FAST, True)) as r:
            stamps = [time.perf_counter() - t0 for ln in r.iter_lines()
                      if ln.startswith("data: {")]
    assert stamps[0] >= 0.3  # the first-token delay
    assert stamps[-1] - stamps[0] >= 0.2  # tokens at about 133/s, not all at once


def test_cli_speed_flag() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "openrouter_nb.sandbox", "--port", "0",
                             "--speed", "realistic"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().split("OPENROUTER_BASE_URL=")[1].split()[0]
        t0 = time.perf_counter()
        r = httpx.post(base_url + "/chat/completions", json=_body(FAST), headers=AUTH,
                       timeout=10)
        assert r.status_code == 200 and time.perf_counter() - t0 >= 0.3
    finally:
        proc.terminate()
        proc.wait(5)
        if proc.stdout is not None:
            proc.stdout.close()
    out = subprocess.run([sys.executable, "-m", "openrouter_nb.sandbox", "--help"],
                         capture_output=True, text=True, check=True).stdout
    assert "--speed {instant,realistic}" in out and "reasoning_only" in out
    bad = subprocess.run([sys.executable, "-m", "openrouter_nb.sandbox", "--speed", "warp"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "invalid choice: 'warp'" in bad.stderr
