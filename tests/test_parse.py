"""Response and error parsing against bodies shaped like the real service's (reference §2-§8)."""

from __future__ import annotations

import json

import pytest

from openrouter_nb.api import errors as E
from openrouter_nb.api.parse import chat_result, error_from_body, rate_limit_info
from openrouter_nb.api.sse import iter_sse_data
from openrouter_nb.api.stream import StreamAccumulator

DAY_RESET_MS = "1788825600000"  # 2026-09-08 00:00 UTC, as in the reference

PER_DAY = {
    "error": {
        "message": "Rate limit exceeded: free-models-per-day. Add 10 credits to unlock 1000 free "
        "model requests per day",
        "code": 429,
        "metadata": {
            "headers": {"X-RateLimit-Limit": "50", "X-RateLimit-Remaining": "0",
                        "X-RateLimit-Reset": DAY_RESET_MS},
            "provider_name": None,
        },
    },
    "user_id": "user_2abc",
}
PER_DAY_HIGH = {
    "error": {"message": "Rate limit exceeded: free-models-per-day-high-balance.", "code": 429,
              "metadata": {"headers": {"X-RateLimit-Limit": "1000", "X-RateLimit-Remaining": "0",
                                       "X-RateLimit-Reset": DAY_RESET_MS},
                           "provider_name": None, "limit_source": "openrouter_free_tier_daily"}},
}
PER_MINUTE = {
    "error": {"message": "Rate limit exceeded: free-models-per-min. ", "code": 429,
              "metadata": {"headers": {"X-RateLimit-Limit": "20", "X-RateLimit-Remaining": "0",
                                       "X-RateLimit-Reset": "1788800040000"},
                           "provider_name": None}},
}
UPSTREAM = {
    "error": {"message": "Provider returned error", "code": 429,
              "metadata": {"raw": "google/gemma-3-27b-it:free is temporarily rate-limited "
                                  "upstream. Please retry shortly, or add your own key",
                           "provider_name": "Google AI Studio"}},
    "user_id": "user_2abc",
}
SHARED_CAPACITY = {
    "error": {"message": "Rate limit exceeded: limit_rpm/google/gemma-3-27b-it/1f2e. High demand "
                         "for google/gemma-3-27b-it:free on OpenRouter - limited to 8 requests per "
                         "minute.", "code": 429,
              "metadata": {"limit_source": "openrouter_shared_capacity"}},
}


@pytest.mark.parametrize(
    ("body", "cls", "kind"),
    [
        (PER_DAY, E.DailyRateLimit, "rate_limit_day"),
        (PER_DAY_HIGH, E.DailyRateLimit, "rate_limit_day"),
        (PER_MINUTE, E.MinuteRateLimit, "rate_limit_minute"),
        (UPSTREAM, E.UpstreamRateLimit, "upstream_rate_limit"),
        (SHARED_CAPACITY, E.UpstreamRateLimit, "upstream_rate_limit"),
    ],
)
def test_three_kinds_of_429(body: dict, cls: type, kind: str) -> None:
    error = error_from_body(body, http_status=429, headers={}, model="x/y:free")
    assert type(error) is cls
    assert error.kind == kind
    assert error.http_status == 429


def test_per_day_message_names_reset_and_shared_quota() -> None:
    error = error_from_body(PER_DAY, http_status=429, headers={})
    assert error.rate_limit is not None
    assert error.rate_limit.limit == 50
    assert error.rate_limit.reset_epoch_s == 1788825600.0  # milliseconds turned into seconds
    assert "00:00 UTC" in error.message
    assert "Add 10 credits" in error.message
    assert "will not help" in error.message


def test_rate_limit_headers_win_over_metadata() -> None:
    headers = {"x-ratelimit-limit": "20", "x-ratelimit-remaining": "0",
               "x-ratelimit-reset": "1788800000000"}
    info = rate_limit_info(headers, PER_DAY["error"]["metadata"])
    assert info is not None and info.limit == 20 and info.reset_epoch_s == 1788800000.0


def test_no_retry_after_on_free_quota_but_read_when_present() -> None:
    assert error_from_body(PER_MINUTE, http_status=429, headers={}).retry_after_s is None
    error = error_from_body(UPSTREAM, http_status=429, headers={"Retry-After": "7"})
    assert error.retry_after_s == 7.0


@pytest.mark.parametrize(
    ("status", "message", "metadata", "kind"),
    [
        (401, "User not found.", None, "auth"),
        (401, "No auth credentials found", None, "auth"),
        (402, "Insufficient credits. Add more using https://openrouter.ai/credits", None, "credits"),
        (403, "Input was flagged", {"reasons": ["violence"], "flagged_input": "…",
                                    "provider_name": "OpenAI", "model_slug": "x"}, "moderation"),
        (404, "No endpoints found for qwen/qwen3:free.", None, "model_unavailable"),
        (400, "foo/bar is not a valid model ID", None, "model_unavailable"),
        (400, "'models' array must have 3 items or fewer.", None, "bad_request"),
        (408, "Operation timed out. Please try again later.", None, "timeout"),
        (502, "Provider returned error", {"raw": "upstream exploded", "provider_name": "Chutes"},
         "provider_error"),
        (503, "Service temporarily unavailable", None, "provider_error"),
        (524, "Request timed out. Please try again later.", None, "timeout"),
        (529, "Provider returned error", {"raw": "Overloaded", "provider_name": "Anthropic",
                                          "error_type": "provider_overloaded"}, "provider_error"),
    ],
)
def test_status_codes_map_to_kinds(status: int, message: str, metadata: dict | None,
                                   kind: str) -> None:
    body = {"error": {"code": status, "message": message, **({"metadata": metadata} if metadata else {})}}
    error = error_from_body(body, http_status=status, headers={})
    assert error.kind == kind
    assert error.message  # short, human message
    assert "Traceback" not in error.message


IN_FLIGHT = {"error": {"code": 402, "message": "This request would exceed your available credits "
                      "given your current in-flight requests. Retry after in-flight requests "
                      "settle, or add credits.",
                      "metadata": {"reason": "in_flight_budget_exhausted",
                                   "limit_source": "openrouter_in_flight_budget"}}}


def test_in_flight_402_is_retryable_but_insufficient_credits_is_not() -> None:
    error = error_from_body(IN_FLIGHT, http_status=402, headers={"Retry-After": "3"})
    assert isinstance(error, E.InFlightCredits) and error.kind == "credits"
    assert error.retryable and error.retry_after_s == 3.0
    assert "in flight" in error.message and "Retry-After 3 s" in error.message
    for message in ("Insufficient credits. Add more using https://openrouter.ai/credits",
                    "This request requires more credits, or fewer max_tokens. You requested up "
                    "to 4096 tokens, but can only afford 1000."):
        plain = error_from_body({"error": {"code": 402, "message": message,
                                           "metadata": {"provider_name": None}}},
                                http_status=402, headers={"Retry-After": "3"})
        assert type(plain) is E.CreditsError and not plain.retryable


def test_edge_timeout_and_overload_say_what_happened() -> None:
    edge = error_from_body({"error": {"code": 524, "message": "Request timed out. Please try "
                                      "again later."}}, http_status=524, headers={}, model="a/b")
    assert isinstance(edge, E.RequestTimeout) and edge.retryable
    assert "edge timed out" in edge.message and "(a/b)" in edge.message
    overloaded = error_from_body({"error": {"code": 529, "message": "Provider returned error",
                                            "metadata": {"raw": "Overloaded",
                                                         "provider_name": "Anthropic"}}},
                                 http_status=529, headers={"Retry-After": "4"})
    assert isinstance(overloaded, E.ProviderError) and overloaded.retryable
    assert "overloaded" in overloaded.message and overloaded.provider == "Anthropic"
    assert overloaded.retry_after_s == 4.0


def test_data_policy_404_is_explained() -> None:
    body = {"error": {"code": 404, "message": "No endpoints found matching your data policy "
                      "(Free model training). Configure: https://openrouter.ai/settings/privacy"}}
    error = error_from_body(body, http_status=404, headers={}, model="a/b:free")
    assert error.kind == "model_unavailable" and error.reason == "data_policy"
    assert "data policy" in error.message and "data_collection" in error.message


def test_a_404_from_provider_preferences_names_them() -> None:
    body = {"error": {"code": 404, "message": "No endpoints found for a/b within your price "
                      "limits.", "availability": {
                          "code": "constraint_filtered", "retryable": False,
                          "requested_models": ["a/b"], "excluded_by": ["max_price"],
                          "constraint": {"field": "provider.max_price", "detail": "prompt <= 0.01"}}}}
    error = error_from_body(body, http_status=404, headers={}, model="a/b")
    assert error.kind == "model_unavailable" and error.reason == "provider_preferences"
    assert "provider preferences (max_price): prompt <= 0.01. Loosen" in error.message
    privacy = {"error": {"code": 404, "message": "No endpoints found.", "availability": {
        "code": "constraint_filtered", "excluded_by": ["data_policy:zdr"]}}}
    assert error_from_body(privacy, http_status=404, headers={}).reason == "data_policy"


def test_error_inside_http_200_is_raised_before_choices() -> None:
    body = {"error": {"message": "Provider returned error", "code": 429,
                      "metadata": {"raw": "Too Many Requests", "provider_name": "Hyperbolic"}},
            "user_id": "user_1"}
    with pytest.raises(E.UpstreamRateLimit):
        chat_result(body, http_status=200, headers={}, latency_s=0.1)


def test_choice_with_finish_reason_error_is_raised() -> None:
    body = {"id": "gen-1", "model": "a/b:free", "provider": "Chutes", "choices": [
        {"index": 0, "finish_reason": "error", "message": {"role": "assistant", "content": "par"},
         "error": {"code": 502, "message": "Upstream died", "metadata": {"error_type": "server"}}}]}
    with pytest.raises(E.ProviderError) as info:
        chat_result(body, http_status=200, headers={}, latency_s=0.1)
    assert info.value.kind == "provider_error"


def test_served_model_and_provider_are_read() -> None:
    body = json.loads("""\n   \n\n{"id":"gen-1753406093-i297oXIqHVrg1Wn69nBS","provider":"DeepInfra",
      "model":"mistralai/mistral-7b-instruct:free","object":"chat.completion","created":1753406093,
      "choices":[{"logprobs":null,"finish_reason":"stop","native_finish_reason":"stop","index":0,
      "message":{"role":"assistant","content":"Hi","refusal":null,"reasoning":null}}],
      "system_fingerprint":null,"usage":{"prompt_tokens":42,"completion_tokens":2,
      "total_tokens":44,"cost":0,"is_byok":false}}""".strip())
    result = chat_result(body, http_status=200, headers={}, latency_s=0.2,
                         requested_model="openrouter/free")
    assert result.model == "mistralai/mistral-7b-instruct:free"
    assert result.provider == "DeepInfra"
    assert result.usage is not None and result.usage.total_tokens == 44 and result.usage.cost == 0
    assert result.generation_id == "gen-1753406093-i297oXIqHVrg1Wn69nBS"


def _chunk(content: str | None = None, finish: str | None = None, usage: dict | None = None,
           choices: bool = True) -> str:
    chunk: dict = {"id": "gen-1", "provider": "Meta", "model": "m/x:free",
                   "object": "chat.completion.chunk", "created": 1}
    if choices:
        chunk["choices"] = [{"index": 0, "delta": {"role": "assistant", "content": content or ""},
                             "finish_reason": finish}]
    else:
        chunk["choices"] = []
    if usage:
        chunk["usage"] = usage
    return json.dumps(chunk)


USAGE = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5, "cost": 0}


def test_sse_comments_are_ignored_and_usage_read_from_any_chunk() -> None:
    stream = (f": OPENROUTER PROCESSING\n\ndata: {_chunk('Hel')}\n\n: OPENROUTER PROCESSING\n\n"
              f"data: {_chunk('lo', 'stop', usage=USAGE)}\n\ndata: [DONE]\n\n")
    acc = StreamAccumulator(requested_model="openrouter/free", started=0.0, clock=lambda: 1.0)
    deltas = [[(d.kind, d.text) for d in acc.feed(data)]
              for data in iter_sse_data([stream.encode()])]
    assert deltas == [[("text", "Hel")], [("text", "lo")], []]
    result = acc.result()
    assert result.text == "Hello" and result.usage is not None and result.usage.total_tokens == 5
    assert result.model == "m/x:free" and result.provider == "Meta"


def test_usage_on_empty_choices_chunk() -> None:
    acc = StreamAccumulator(requested_model="m", started=0.0, clock=lambda: 1.0)
    for data in [_chunk("a"), _chunk(finish="stop"),
                 _chunk(choices=False, usage={"completion_tokens": 1}), "[DONE]"]:
        acc.feed(data)
    assert acc.result().usage is not None


def test_midstream_error_keeps_partial_text() -> None:
    acc = StreamAccumulator(requested_model="m", started=0.0, clock=lambda: 1.0)
    acc.feed(_chunk("Once upon"))
    event = {"id": "gen-1", "object": "chat.completion.chunk", "model": "m", "provider": "OpenAI",
             "error": {"code": "server_error", "message": "Provider disconnected"},
             "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}]}
    with pytest.raises(E.MidStreamError) as info:
        acc.feed(json.dumps(event))
    assert info.value.partial_text == "Once upon"
    assert info.value.kind == "midstream_error"


def test_truncated_stream_is_an_error() -> None:
    acc = StreamAccumulator(requested_model="m", started=0.0, clock=lambda: 1.0)
    acc.feed(_chunk("Half an ans"))
    with pytest.raises(E.MidStreamError, match="ended early"):
        acc.result()


def test_sse_multiline_data_and_a_last_event_without_its_blank_line() -> None:
    assert list(iter_sse_data([b"data: a\ndata: b\n\nevent: x\ndata: c\n"])) == ["a\nb", "c"]
    assert list(iter_sse_data([b"data: a\n\ndata: {\"cut"])) == ["a"]  # the cut line is dropped
