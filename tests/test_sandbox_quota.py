"""Free-model quota engine of the sandbox: windows, tiers, resets, counting rules."""

from __future__ import annotations

import httpx
import pytest

from openrouter_nb.sandbox import QuotaEngine, Sandbox, SandboxTransport, sandbox_key

MIDNIGHT = 1_788_825_600.0  # 2026-09-08 00:00:00 UTC
FREE = "openai/gpt-oss-20b:free"
PAID = "openai/gpt-oss-20b"


class FakeClock:
    def __init__(self, t: float = MIDNIGHT + 3600) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def _client(sb: Sandbox, name: str = "demo") -> httpx.Client:
    return httpx.Client(transport=SandboxTransport(sb), base_url="http://sandbox.test/api/v1",
                        headers={"Authorization": f"Bearer {sandbox_key(name)}"})


def _chat(client: httpx.Client, model: str = FREE, **headers: str) -> httpx.Response:
    return client.post("/chat/completions", headers=headers,
                       json={"model": model, "messages": [{"role": "user", "content": "hi"}]})


def test_sliding_minute_window_and_reset_time() -> None:
    clock = FakeClock()
    q = QuotaEngine(rpm=3, rpd=50, clock=clock, count_rejected=False)
    for i in range(3):
        clock.t += 1
        assert q.attempt("k").allowed, i
    first = MIDNIGHT + 3601
    clock.t += 1
    d = q.attempt("k")
    assert d.kind == "minute" and d.limit == 3
    assert d.reset_ms == int((first + 60) * 1000)  # when the oldest attempt leaves the window
    clock.t = first + 60.5
    assert q.attempt("k").allowed  # the first attempt left the window
    assert not q.attempt("k").allowed


def test_minute_rejections_count_in_window_and_day() -> None:
    clock = FakeClock()
    q = QuotaEngine(rpm=2, rpd=50, clock=clock)
    assert q.attempt("k").allowed and q.attempt("k").allowed
    clock.t += 30
    assert q.attempt("k").kind == "minute"  # rejected at t0+30, stays in the window
    clock.t += 31  # the two admitted attempts have left; the rejected one has not
    assert q.attempt("k").allowed
    assert q.attempt("k").kind == "minute"
    # failed attempts count: 3 admitted + 2 per-minute rejections (as the ledger counts them)
    assert q.daily("k") == {"used": 5, "limit": 50, "remaining": 45}


def test_day_rejections_never_push_used_over_the_limit() -> None:
    clock = FakeClock()
    q = QuotaEngine(rpm=1, rpd=2, clock=clock)
    assert q.attempt("k").allowed
    assert q.attempt("k").kind == "minute"  # counted: the day is now spent
    assert q.attempt("k").kind == "day"
    clock.t += 61
    assert q.attempt("k").kind == "day"
    assert q.daily("k") == {"used": 2, "limit": 2, "remaining": 0}


def test_daily_limit_and_utc_midnight_reset() -> None:
    clock = FakeClock(MIDNIGHT + 86400 - 120)
    q = QuotaEngine(rpm=1000, rpd=5, clock=clock)
    for _ in range(5):
        assert q.attempt("k").allowed
    d = q.attempt("k")
    assert d.kind == "day"
    assert d.reset_ms == int((MIDNIGHT + 86400) * 1000)
    assert q.daily("k")["remaining"] == 0
    clock.t = MIDNIGHT + 86400 + 1
    assert q.daily("k") == {"used": 0, "limit": 5, "remaining": 5}
    assert q.attempt("k").allowed


def test_quota_is_per_key() -> None:
    q = QuotaEngine(rpm=1, rpd=10, clock=FakeClock())
    assert q.attempt("a").allowed
    assert not q.attempt("a").allowed
    assert q.attempt("b").allowed


@pytest.mark.parametrize(("credits", "rpd", "expected"), [(0, None, 50), (10, None, 1000),
                                                           (25, 7, 7)])
def test_tier_from_credits(credits: float, rpd: int | None, expected: int) -> None:
    sb = Sandbox(credits=credits, rpd=rpd, clock=FakeClock())
    assert sb.rpd == expected
    info = _client(sb).get("/key").json()["data"]
    assert info["free_model_daily_requests"]["limit"] == expected
    assert info["is_free_tier"] is (credits < 10)


def test_day_429_through_sandbox_has_real_shape() -> None:
    clock = FakeClock()
    sb = Sandbox(rpd=2, rpm=100, clock=clock)
    client = _client(sb)
    assert _chat(client).status_code == 200
    ok = _chat(client)
    assert ok.status_code == 200
    assert not any(h.lower().startswith("x-ratelimit") for h in ok.headers)
    r = _chat(client)
    assert r.status_code == 429
    assert "retry-after" not in r.headers
    err = r.json()["error"]
    assert err["message"] == ("Rate limit exceeded: free-models-per-day. Add 10 credits to "
                              "unlock 1000 free model requests per day")
    reset = str(int((MIDNIGHT + 86400) * 1000))
    assert err["metadata"]["headers"] == {"X-RateLimit-Limit": "2",
                                          "X-RateLimit-Remaining": "0",
                                          "X-RateLimit-Reset": reset}
    assert r.headers["X-RateLimit-Reset"] == reset
    assert err["metadata"]["provider_name"] is None
    assert err["metadata"]["limit_source"] == "openrouter_free_tier_daily"
    assert r.json()["user_id"].startswith("user_")
    # paid twins are not limited by the free quota
    assert _chat(client, PAID).status_code == 200


def test_high_balance_day_message() -> None:
    sb = Sandbox(credits=10, rpd=1, clock=FakeClock())
    client = _client(sb)
    _chat(client)
    err = _chat(client).json()["error"]
    assert err["message"] == "Rate limit exceeded: free-models-per-day-high-balance."


def test_minute_429_through_sandbox_and_window_scale() -> None:
    clock = FakeClock()
    sb = Sandbox(rpm=2, window_s=2.0, clock=clock)
    client = _client(sb)
    assert _chat(client).status_code == 200
    assert _chat(client, "openrouter/free").status_code == 200  # the router shares the bucket
    r = _chat(client)
    assert r.status_code == 429
    assert r.json()["error"]["message"] == "Rate limit exceeded: free-models-per-min. "
    assert r.headers["X-RateLimit-Limit"] == "2"
    assert int(r.headers["X-RateLimit-Reset"]) == int((clock.t + 2.0) * 1000)
    clock.t += 2.5
    assert _chat(client).status_code == 200


def test_failed_and_faulted_attempts_count() -> None:
    sb = Sandbox(clock=FakeClock())
    client = _client(sb)
    assert _chat(client, **{"X-Sandbox-Fault": "provider_502"}).status_code == 502
    sb.queue_fault("upstream_429")
    assert _chat(client).status_code == 429
    assert _chat(client, "nope/unknown:free").status_code == 400  # never reached the limiter
    assert client.get("/key").json()["data"]["free_model_daily_requests"]["used"] == 2


def test_models_fallback_counts_once() -> None:
    sb = Sandbox(clock=FakeClock())
    client = _client(sb)
    body = {"models": [FREE, "z-ai/glm-4.5-air:free"], "messages": [
        {"role": "user", "content": "hi"}]}
    r = client.post("/chat/completions", json=body, headers={"X-Sandbox-Fault": "upstream_429"})
    assert r.json()["model"] == "z-ai/glm-4.5-air:free"
    assert sb.quota.daily(sandbox_key())["used"] == 1


def test_key_without_daily_field() -> None:
    sb = Sandbox(key_reports_daily=False)
    assert "free_model_daily_requests" not in _client(sb).get("/key").json()["data"]


def test_key_daily_count_lags_only_when_asked() -> None:
    clock = FakeClock()
    live, lagging = Sandbox(clock=clock), Sandbox(clock=clock, key_cache_s=60)
    for sb in (live, lagging):
        client = _client(sb)
        assert client.get("/key").json()["data"]["free_model_daily_requests"]["used"] == 0
        _chat(client)
    used = [_client(sb).get("/key").json()["data"]["free_model_daily_requests"]["used"]
            for sb in (live, lagging)]
    assert used == [1, 0]  # default: live; opt-in: the figure cached ~60 s ago
    clock.t += 59
    assert _client(lagging).get("/key").json()["data"]["free_model_daily_requests"] == {
        "used": 0, "limit": 50, "remaining": 50}
    clock.t += 2
    assert _client(lagging).get("/key").json()["data"]["free_model_daily_requests"] == {
        "used": 1, "limit": 50, "remaining": 49}
    assert lagging.quota.daily(sandbox_key())["used"] == 1  # the limiter itself never lags
