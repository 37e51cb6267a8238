"""Every injected fault has the real shape, in-process (transport) and over loopback (server)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from openrouter_nb.sandbox import FAULTS, Sandbox, SandboxServer, SandboxTransport, sandbox_key

MODEL = "google/gemma-3-27b-it:free"
PROMPT = "Tell me a long story about dragons " * 10


@pytest.fixture(params=["transport", "server"])
def backend(request: pytest.FixtureRequest) -> Iterator[tuple[httpx.Client, Sandbox]]:
    sb = Sandbox(seed=3)
    auth = {"Authorization": f"Bearer {sandbox_key()}"}
    if request.param == "transport":
        with httpx.Client(transport=SandboxTransport(sb), headers=auth,
                          base_url="http://sandbox.test/api/v1") as client:
            yield client, sb
    else:
        with SandboxServer(sb) as srv, httpx.Client(base_url=srv.base_url, headers=auth,
                                                    timeout=5) as client:
            yield client, sb


def _chat(client: httpx.Client, fault: str, **extra: Any) -> httpx.Response:
    body = {"model": MODEL, "messages": [{"role": "user", "content": PROMPT}], **extra}
    return client.post("/chat/completions", json=body, headers={"X-Sandbox-Fault": fault})


def _err(r: httpx.Response) -> dict[str, Any]:
    obj = r.json()
    assert "choices" not in obj
    assert obj["error"]["code"] == (r.status_code if r.status_code != 200 else 429)
    return obj["error"]


def _quota(kind: str) -> Callable[[httpx.Response], None]:
    def check(r: httpx.Response) -> None:
        assert r.status_code == 429 and "retry-after" not in r.headers
        err = _err(r)
        assert err["message"].startswith(f"Rate limit exceeded: free-models-per-{kind}")
        hdrs = err["metadata"]["headers"]
        assert hdrs["X-RateLimit-Remaining"] == "0"
        for name, value in hdrs.items():
            assert r.headers[name] == value
        assert len(hdrs["X-RateLimit-Reset"]) == 13  # epoch milliseconds
        assert err["metadata"]["provider_name"] is None
        assert r.json()["user_id"].startswith("user_")
    return check


def _provider(status: int, raw: str, retry_after: str | None = None
              ) -> Callable[[httpx.Response], None]:
    def check(r: httpx.Response) -> None:
        assert r.status_code == status
        err = _err(r)
        assert err["message"] == "Provider returned error"
        assert raw in err["metadata"]["raw"]
        assert err["metadata"]["provider_name"] == "Google AI Studio"
        assert r.headers.get("retry-after") == retry_after
        assert not any(h.lower().startswith("x-ratelimit") for h in r.headers)
    return check


def _plain(status: int, message: str, av: str | None = None,
           retry_after: str | None = None) -> Callable[[httpx.Response], None]:
    def check(r: httpx.Response) -> None:
        assert r.status_code == status
        err = _err(r)
        assert message in err["message"]
        if av:
            assert err["availability"]["code"] == av
            assert err["availability"]["requested_models"] == [MODEL]
        assert r.headers.get("retry-after") == retry_after
    return check


def _moderation(r: httpx.Response) -> None:
    assert r.status_code == 403
    meta = _err(r)["metadata"]
    assert meta["reasons"] == ["violence"] and meta["model_slug"] == MODEL
    assert len(meta["flagged_input"]) <= 100 and meta["provider_name"] == "Google AI Studio"


def _shared(r: httpx.Response) -> None:
    assert r.status_code == 429
    err = _err(r)
    assert f"High demand for {MODEL} on OpenRouter" in err["message"]
    assert err["metadata"]["limit_source"] == "openrouter_shared_capacity"


def _error_in_200(r: httpx.Response) -> None:
    assert r.status_code == 200
    assert r.json()["error"] == {"message": "Provider returned error", "code": 429,
                                 "metadata": {"raw": "Too Many Requests",
                                              "provider_name": "Google AI Studio"}}
    assert set(r.json()) == {"error", "user_id"}


def _error_in_choices(r: httpx.Response) -> None:
    assert r.status_code == 200
    choice = r.json()["choices"][0]
    assert choice["finish_reason"] == "error"
    assert choice["error"]["metadata"]["error_type"] == "provider_unavailable"
    assert choice["message"]["content"]  # partial content


def _in_flight(r: httpx.Response) -> None:
    assert r.status_code == 402 and r.headers["retry-after"] == "2"
    err = _err(r)
    assert err["message"].startswith("This request would exceed your available credits given "
                                     "your current in-flight requests.")
    assert err["metadata"] == {"reason": "in_flight_budget_exhausted",
                               "limit_source": "openrouter_in_flight_budget"}


def _non_json(r: httpx.Response) -> None:
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert r.text == "<html>Bad gateway</html>"


def _truncated(r: httpx.Response) -> None:
    assert r.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(r.text)


def _empty(r: httpx.Response) -> None:
    assert r.status_code == 200
    assert r.json()["choices"][0]["message"]["content"] == ""


def _reasoning_only(r: httpx.Response) -> None:
    assert r.status_code == 200
    choice = r.json()["choices"][0]
    message = choice["message"]
    assert message["content"] == "" and choice["finish_reason"] == "stop"
    assert message["reasoning"].startswith(f"[sandbox] Simulated answer from {MODEL}")
    assert message["reasoning_details"] == [{"type": "reasoning.text",
                                             "text": message["reasoning"],
                                             "format": "unknown", "index": 0}]
    usage = r.json()["usage"]
    assert usage["completion_tokens_details"]["reasoning_tokens"] == usage["completion_tokens"]


UPSTREAM = "temporarily rate-limited upstream. Please retry shortly"
CHECKS: dict[str, Callable[[httpx.Response], None]] = {
    "rate_limit_minute": _quota("min"),
    "rate_limit_day": _quota("day"),
    "upstream_429": _provider(429, f"{MODEL} is {UPSTREAM}"),
    "upstream_429_retry_after": _provider(429, UPSTREAM, retry_after="2"),
    "shared_capacity_429": _shared,
    "error_in_200": _error_in_200,
    "provider_502": _provider(502, "upstream connect error"),
    "service_503": _plain(503, "Service temporarily unavailable", retry_after="1"),
    "request_timeout_408": _plain(408, "Operation timed out. Please try again later."),
    "auth": _plain(401, "User not found."),
    "no_endpoints_404": _plain(404, f"No endpoints found for {MODEL}.", "no_endpoints"),
    "free_variant_ended_404": _plain(404, "free variant", "free_variant_ended"),
    "data_policy_404": _plain(404, "No endpoints found matching your data policy (Free model "
                              "training). Configure: https://openrouter.ai/settings/privacy",
                              "privacy_restricted"),
    "moderation_403": _moderation,
    "credits_402": _plain(402, "Insufficient credits. Add more using "
                          "https://openrouter.ai/credits"),
    "in_flight_402": _in_flight,
    "edge_timeout_524": _plain(524, "Request timed out. Please try again later."),
    "overloaded_529": _provider(529, "Overloaded"),
    "non_json": _non_json,
    "error_in_choices": _error_in_choices,
    "midstream_error": _error_in_choices,  # without streaming it surfaces in choices
    "midstream_error_done": _error_in_choices,
    "truncated_stream": _truncated,
    "empty_content": _empty,
    "reasoning_only": _reasoning_only,
}


def test_every_fault_has_a_check() -> None:
    assert set(CHECKS) | {"timeout"} == set(FAULTS)


@pytest.mark.parametrize("fault", sorted(CHECKS))
def test_fault_shape(backend: tuple[httpx.Client, Sandbox], fault: str) -> None:
    client, sb = backend
    CHECKS[fault](_chat(client, fault))
    rec = sb.requests[-1]
    assert rec.fault == fault and rec.headers["Authorization"] == "Bearer ***"
    # Faulted attempts count; an injected per-day 429 counts like the quota's own (not today).
    assert sb.quota.daily(sandbox_key())["used"] == (0 if fault == "rate_limit_day" else 1)


def test_timeout_fault(backend: tuple[httpx.Client, Sandbox]) -> None:
    client, _ = backend
    with pytest.raises(httpx.ReadTimeout):
        client.post("/chat/completions", timeout=0.3,
                    json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}]},
                    headers={"X-Sandbox-Fault": "timeout", "X-Sandbox-Hang-S": "1"})


def test_unknown_fault_is_a_400_listing_names(backend: tuple[httpx.Client, Sandbox]) -> None:
    client, sb = backend
    r = _chat(client, "gremlins")
    assert r.status_code == 400
    assert "gremlins" in r.json()["error"]["message"]
    assert "midstream_error" in r.json()["error"]["message"]
    assert sb.quota.daily(sandbox_key())["used"] == 0


def test_queue_fault_applies_to_next_requests() -> None:
    sb = Sandbox()
    sb.queue_fault("provider_502", 2)
    client = httpx.Client(transport=SandboxTransport(sb), base_url="http://t/api/v1",
                          headers={"Authorization": f"Bearer {sandbox_key()}"})
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    codes = [client.post("/chat/completions", json=body).status_code for _ in range(3)]
    assert codes == [502, 502, 200]
    with pytest.raises(ValueError, match="unknown fault"):
        sb.queue_fault("nope")


def test_fallback_advances_on_model_errors() -> None:
    sb = Sandbox()
    client = httpx.Client(transport=SandboxTransport(sb), base_url="http://t/api/v1",
                          headers={"Authorization": f"Bearer {sandbox_key()}"})
    body = {"model": MODEL, "models": ["z-ai/glm-4.5-air:free", "openai/gpt-oss-20b"],
            "messages": [{"role": "user", "content": "hi"}]}
    r = client.post("/chat/completions", json=body,
                    headers={"X-Sandbox-Fault": "upstream_429,provider_502"})
    assert r.status_code == 200 and r.json()["model"] == "openai/gpt-oss-20b"
    r = client.post("/chat/completions", json=body,
                    headers={"X-Sandbox-Fault": "upstream_429,provider_502,service_503"})
    assert r.status_code == 503  # every model failed: the last error is returned
    r = client.post("/chat/completions", json=body, headers={"X-Sandbox-Fault": "credits_402"})
    assert r.status_code == 402  # account-level errors do not fall back


def test_natural_faults_follow_reliability() -> None:
    def run() -> list[int]:
        sb = Sandbox(seed=9, rpm=1000, natural_faults=True)
        client = httpx.Client(transport=SandboxTransport(sb), base_url="http://t/api/v1",
                              headers={"Authorization": f"Bearer {sandbox_key()}"})
        body = {"model": "deepseek/deepseek-chat-v3.1:free",
                "messages": [{"role": "user", "content": "hi"}]}
        return [client.post("/chat/completions", json=body).status_code for _ in range(30)]

    codes = run()
    assert codes == run()  # deterministic for a fresh sandbox with the same seed
    assert 200 in codes and set(codes) - {200} <= {429, 502} and len(set(codes)) > 1
