"""Turn OpenRouter's HTTP answers into ``ChatResult`` objects or typed errors.

What the real service does, and this module handles (see reference/openrouter-api.md):
errors with HTTP 200 (a body holding only ``error``, or ``choices[0].finish_reason ==
"error"``), errors mid-stream, whitespace before the JSON, ``X-RateLimit-*`` in the
headers *and* in ``error.metadata.headers`` with the reset in epoch milliseconds, and
three kinds of 429 that need three different reactions. An answer without text is
settled in one place (``settle``): cut at ``max_tokens`` it is a ``TruncatedError``, with only
reasoning it is an answer, with nothing at all a retryable empty-answer ``ProviderError``.

Whatever the body holds, the only exceptions raised are ``OpenRouterError`` subclasses: a
field of the wrong type or an absurd number is read as unknown.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any

from .._text import shorten
from ._json import MAX_INT, as_float, as_str, dicts, dumps, load_json
from .assistant import content_text, reasoning_of, tool_calls_of
from .errors import (
    AuthError,
    BadRequestError,
    CreditsError,
    DailyRateLimit,
    InFlightCredits,
    MinuteRateLimit,
    ModelUnavailableError,
    ModerationError,
    OpenRouterError,
    ProviderError,
    RateLimitInfo,
    RequestTimeout,
    TruncatedError,
    UpstreamRateLimit,
)
from .types import ChatResult, Usage

_SNIPPET = 160


def _snippet(text: str) -> str:
    return shorten(text, _SNIPPET)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return str(value)
    return None


#: Resets and dates beyond this (the year 3000) are not believed.
_LATEST_EPOCH_S = 32_503_680_000.0


def _to_float(value: Any) -> float | None:
    """A finite number from a header or metadata value, else ``None``."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _to_int(value: Any) -> int | None:
    number = _to_float(value)
    return int(number) if number is not None and abs(number) <= MAX_INT else None


def rate_limit_info(headers: Mapping[str, str], metadata: Mapping[str, Any]) -> RateLimitInfo | None:
    """``X-RateLimit-*`` from the response headers, else from ``error.metadata.headers``."""
    sources: list[Mapping[str, str]] = [headers]
    nested = metadata.get("headers")
    if isinstance(nested, Mapping):
        sources.append(nested)
    for source in sources:
        limit = _to_int(_header(source, "X-RateLimit-Limit"))
        remaining = _to_int(_header(source, "X-RateLimit-Remaining"))
        reset = _to_int(_header(source, "X-RateLimit-Reset"))
        if limit is None and remaining is None and reset is None:
            continue
        reset_s: float | None = None
        if reset is not None:
            # OpenRouter sends epoch milliseconds; accept seconds from look-alike servers.
            reset_s = reset / 1000.0 if reset > 100_000_000_000 else float(reset)
            if not 0 <= reset_s <= _LATEST_EPOCH_S:
                reset_s = None
        return RateLimitInfo(limit=limit, remaining=remaining, reset_epoch_s=reset_s)
    return None


def retry_after_seconds(
    headers: Mapping[str, str], metadata: Mapping[str, Any], now: float | None = None
) -> float | None:
    """``Retry-After`` (seconds or an HTTP date), else ``metadata.retry_after_seconds``."""
    value = _header(headers, "Retry-After")
    if value is not None:
        seconds = _to_float(value)
        if seconds is None:
            when = _http_date(value)
            if when is not None:
                return max(0.0, when - (time.time() if now is None else now))
        else:
            return max(0.0, seconds)
    for source in (metadata, metadata.get("availability")):
        if isinstance(source, Mapping):
            for name in ("retry_after_seconds", "retry_after"):
                number = as_float(source.get(name))
                if number is not None:
                    return max(0.0, number)
    return None


def _http_date(value: str) -> float | None:
    """An HTTP date as epoch seconds, or ``None`` for anything else."""
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _clock_utc(epoch_s: float) -> str:
    utc = datetime.fromtimestamp(epoch_s, tz=timezone.utc)
    local = utc.astimezone()
    text = f"{utc:%H:%M} UTC"
    if local.utcoffset() != utc.utcoffset():
        text += f" ({local:%H:%M} local)"
    return text


def _metadata(error: Mapping[str, Any]) -> dict[str, Any]:
    metadata = error.get("metadata")
    result = dict(metadata) if isinstance(metadata, Mapping) else {}
    availability = error.get("availability")
    if isinstance(availability, Mapping):
        result.setdefault("availability", dict(availability))
    return result


def _status_of(error: Mapping[str, Any], http_status: int) -> int:
    for value in (error.get("code"), error.get("http_status")):
        if isinstance(value, int) and not isinstance(value, bool) and 100 <= value <= 599:
            return value
    return http_status


def _names(value: Any) -> list[str]:
    """A list of names from a JSON array (or a lone string); ``[]`` for anything else."""
    if isinstance(value, str):
        return [value]
    return [str(item) for item in value] if isinstance(value, list) else []


#: ``availability.excluded_by`` entries that come from the request's ``provider`` object.
_PREFERENCE_CONSTRAINTS = ("max_price", "allowed_providers", "quantization", "require_parameters")


def _in_flight(metadata: Mapping[str, Any]) -> bool:
    """A 402 from the in-flight spending budget (transient), not an empty balance."""
    return (metadata.get("reason") == "in_flight_budget_exhausted"
            or metadata.get("limit_source") == "openrouter_in_flight_budget")


def _unavailable(reason: str, message: str, **common: Any) -> ModelUnavailableError:
    error = ModelUnavailableError(message, **common)
    error.reason = reason
    return error


@dataclass(frozen=True)
class _Envelope:
    """The parts of an error body every classifier reads."""

    status: int
    message: str
    metadata: dict[str, Any]
    raw_text: str
    availability: Mapping[str, Any]
    where: str  # " (model)" or ""
    common: dict[str, Any]

    @property
    def availability_code(self) -> Any:
        return self.availability.get("code")


def error_from_body(
    body: Any,
    *,
    http_status: int,
    headers: Mapping[str, str] | None = None,
    model: str | None = None,
) -> OpenRouterError:
    """Classify an OpenRouter error envelope into one typed exception."""
    headers = headers or {}
    error: Mapping[str, Any] = {}
    if isinstance(body, Mapping) and isinstance(body.get("error"), Mapping):
        error = body["error"]
    status = _status_of(error, http_status)
    metadata = _metadata(error)
    provider = metadata.get("provider_name") if isinstance(metadata.get("provider_name"), str) else None
    raw = metadata.get("raw")
    availability = metadata.get("availability")
    limits = rate_limit_info(headers, metadata)
    common: dict[str, Any] = dict(
        http_status=status, model=model, provider=provider,
        retry_after_s=retry_after_seconds(headers, metadata), rate_limit=limits,
        metadata=metadata,
    )
    envelope = _Envelope(
        status=status, message=str(error.get("message") or "") or f"HTTP {status}",
        metadata=metadata,
        raw_text=raw if isinstance(raw, str) else (dumps(raw) if raw is not None else ""),
        availability=availability if isinstance(availability, Mapping) else {},
        where=f" ({model})" if model else "", common=common,
    )
    if status == 429:
        return _classify_429(envelope.message, envelope.raw_text, metadata, limits,
                             envelope.availability_code, envelope.where, common)
    classify = _CLASSIFIERS.get(status, _classify_other)
    return classify(envelope)


def _classify_401(e: _Envelope) -> OpenRouterError:
    return AuthError(
        f"OpenRouter rejected the API key ({e.message.rstrip('.')}). Check OPENROUTER_API_KEY, "
        "or enter a key with %openrouter key.", **e.common)


def _classify_402(e: _Envelope) -> OpenRouterError:
    if _in_flight(e.metadata):
        retry_after = e.common["retry_after_s"]
        wait = f" (Retry-After {retry_after:g} s)" if retry_after is not None else ""
        return InFlightCredits(
            f"Requests still in flight hold the credits this one needs{wait}. Retry once they "
            "settle (the session does, within its retries), or add credits at "
            "openrouter.ai/credits.", **e.common)
    return CreditsError(
        f"Not enough credits: {_snippet(e.message)} Free models need a non-negative balance; "
        "top up at openrouter.ai/credits or lower max_tokens.", **e.common)


def _classify_403(e: _Envelope) -> OpenRouterError:
    metadata = e.metadata
    if metadata.get("reasons") or metadata.get("flagged_input") is not None or (
        metadata.get("error_type") == "content_policy_violation"
    ):
        reasons = ", ".join(_names(metadata.get("reasons"))) or "policy"
        return ModerationError(
            f"The prompt was flagged by moderation{e.where} ({reasons}). Rephrase it, or pick a "
            "model without moderation.", **e.common)
    source = str(metadata.get("limit_source", ""))
    if "budget" in source or "limit" in source:
        return CreditsError(
            f"A spending budget is used up: {_snippet(e.message)} Wait for its reset or raise it.",
            **e.common)
    return AuthError(
        f"Not allowed: {_snippet(e.message)} Check the key's permissions and guardrails.",
        **e.common)


def _classify_404(e: _Envelope) -> OpenRouterError:
    text = e.message + " " + e.raw_text
    excluded = _names(e.availability.get("excluded_by"))
    if e.availability_code == "privacy_restricted" or "data policy" in text.lower() or any(
            name.startswith("data_policy") for name in excluded):
        return _unavailable(
            "data_policy",
            f"No provider of this model{e.where} matches your data policy: the privacy settings "
            "(or provider preferences such as data_collection='deny' / zdr=True) exclude every "
            "endpoint. Relax them at openrouter.ai/settings/privacy or pick another model.",
            **e.common)
    if e.availability_code == "free_variant_ended":
        return _unavailable(
            "free_variant_ended",
            f"The free variant{e.where} has ended. Pick another :free model "
            "(%openrouter models --free) or use openrouter/free.", **e.common)
    preferences = [name for name in excluded if name in _PREFERENCE_CONSTRAINTS]
    if preferences:
        constraint = e.availability.get("constraint") or {}
        detail = constraint.get("detail") if isinstance(constraint, Mapping) else None
        said = f"{_snippet(str(detail)).rstrip('.')}." if detail else _snippet(e.message)
        return _unavailable(
            "provider_preferences",
            f"No endpoint of this model{e.where} meets your provider preferences "
            f"({', '.join(preferences)}): {said} Loosen them (provider max_price, only, "
            "ignore, order, allow_fallbacks) or pick another model.", **e.common)
    return _unavailable(
        "no_endpoints",
        f"No provider is serving this model right now{e.where}: {_snippet(e.message)} Pick "
        "another model (%openrouter models --free) or use openrouter/free.", **e.common)


def _classify_400(e: _Envelope) -> OpenRouterError:
    if "not a valid model" in e.message or e.availability_code == "model_not_found":
        return _unavailable(
            "unknown_model",
            f"Unknown model id: {_snippet(e.message).rstrip('.')}. Model ids look like "
            "'vendor/model:free'; list them with %openrouter models --free.", **e.common)
    return BadRequestError(f"The request was rejected: {_snippet(e.message)}", **e.common)


def _classify_timeout(e: _Envelope) -> OpenRouterError:
    if e.status == 524:
        return RequestTimeout(
            f"OpenRouter's edge timed out waiting for the provider{e.where} (HTTP 524). Retry, "
            "or pick a faster model.", **e.common)
    return RequestTimeout(
        f"OpenRouter timed out waiting for the model{e.where}. Retry, or pick a faster model.",
        **e.common)


def _classify_too_large(e: _Envelope) -> OpenRouterError:
    return BadRequestError(
        f"The request was rejected: {_snippet(e.message)} Shorten the prompt.", **e.common)


def _classify_other(e: _Envelope) -> OpenRouterError:
    detail = (f"{e.message}: {e.raw_text}" if e.raw_text and e.raw_text not in e.message
              else e.message)
    if e.status == 529:
        return ProviderError(
            f"The provider is overloaded{e.where} (HTTP 529): {_snippet(detail)} Retry shortly "
            "or pick another model.", **e.common)
    return ProviderError(
        f"The provider failed{e.where} (HTTP {e.status}): {_snippet(detail)} Retry shortly or "
        "pick another model.", **e.common)


_CLASSIFIERS: dict[int, Callable[[_Envelope], OpenRouterError]] = {
    400: _classify_400, 401: _classify_401, 402: _classify_402, 403: _classify_403,
    404: _classify_404, 408: _classify_timeout, 413: _classify_too_large,
    422: _classify_too_large, 524: _classify_timeout,
}


def _classify_429(
    message: str,
    raw_text: str,
    metadata: Mapping[str, Any],
    limits: RateLimitInfo | None,
    availability_code: Any,
    where: str,
    common: dict[str, Any],
) -> OpenRouterError:
    source = str(metadata.get("limit_source") or "")
    lowered = message.lower()
    is_day = "free-models-per-day" in lowered or source == "openrouter_free_tier_daily"
    is_minute = "free-models-per-min" in lowered or source == "openrouter_free_tier_minute"
    is_upstream = (
        "provider returned error" in lowered
        or "high demand" in lowered
        or "limit_rpm/" in lowered
        or "limit_rpd/" in lowered
        or source == "openrouter_shared_capacity"
        or availability_code == "capacity_exhausted"
        or bool(metadata.get("provider_name"))
        or bool(raw_text)
    )
    if not (is_day or is_minute or is_upstream) and limits is not None:
        # A bare "Rate limit exceeded" with X-RateLimit-*: judge by how far away the reset is.
        now = time.time()
        far = limits.reset_epoch_s is not None and limits.reset_epoch_s - now > 120
        is_day, is_minute = far, not far
    if is_day:
        limit = limits.limit if limits and limits.limit else None
        quota = f" ({limit}/day)" if limit else ""
        when = (
            f" It resets at {_clock_utc(limits.reset_epoch_s)}."
            if limits and limits.reset_epoch_s
            else " It resets at 00:00 UTC."
        )
        hint = " Add 10 credits to unlock 1000/day." if limit == 50 else ""
        return DailyRateLimit(
            f"Daily free-model limit reached{quota}.{when} Another :free model will not help: "
            f"the quota is shared.{hint}",
            **common,
        )
    if is_minute:
        wait = ""
        if limits and limits.reset_epoch_s:
            wait = f" It resets at {_clock_utc(limits.reset_epoch_s)}."
        per_minute = limits.limit if limits and limits.limit else 20
        return MinuteRateLimit(
            f"Per-minute free-model limit reached ({per_minute}/min).{wait} Wait a minute, or "
            "let the session pace requests.",
            **common,
        )
    detail = raw_text or message
    return UpstreamRateLimit(
        f"The model is rate-limited upstream{where}: {_snippet(detail)} Retry shortly or pick "
        "another model; this is not your quota.",
        **common,
    )


def _choice_error(choice: Mapping[str, Any], headers: Mapping[str, str],
                  model: str | None) -> OpenRouterError:
    error = choice.get("error") if isinstance(choice.get("error"), Mapping) else {}
    envelope = {"error": error or {"code": 502, "message": "The provider stopped with an error"}}
    return error_from_body(envelope, http_status=502, headers=headers, model=model)


def _empty_answer(model: Any, provider: Any, http_status: int) -> ProviderError:
    # Models sometimes answer with no content at all (cold starts, scaling; reference §10.3).
    return ProviderError(
        f"The model{f' ({model})' if model else ''} returned an empty answer. Retry, or pick "
        "another model.",
        http_status=http_status, model=model if isinstance(model, str) else None,
        provider=provider if isinstance(provider, str) else None,
    )


def _truncated(result: ChatResult, model: str | None, http_status: int) -> TruncatedError:
    usage = result.usage
    where = f" ({model})" if model else ""
    if result.reasoning or result.reasoning_details:
        reasoning = usage.reasoning_tokens if usage else None
        if reasoning and usage and usage.completion_tokens:
            # Real streams report one reasoning token more than the completion (M40).
            reasoning = min(reasoning, usage.completion_tokens)
        figure = (f" ({reasoning:,} reasoning tokens)" if reasoning else
                  f" ({usage.completion_tokens:,} tokens)" if usage and usage.completion_tokens
                  else "")
        message = f"The model{where} spent all of its tokens thinking{figure} and wrote no answer."
    else:
        spent = usage.completion_tokens if usage else None
        figure = f" ({spent:,} tokens)" if spent else ""
        message = f"The model{where} reached its token limit{figure} before writing any answer."
    error = TruncatedError(message, http_status=http_status, model=model,
                           provider=result.provider)
    error.result = result
    error.partial_text = result.reasoning or ""
    return error


def settle(result: ChatResult, *, http_status: int, requested_model: str | None) -> ChatResult:
    """``result`` when it is an answer; the error it stands for when it has no text.

    Tool calls or text: an answer (a cut at ``max_tokens`` is the caller's to mention). No
    text and ``finish_reason: "length"``: ``TruncatedError`` (not retried: the same request
    stops at the same place). Only reasoning: an answer with empty ``text``. Nothing: the
    retryable empty-answer ``ProviderError``.
    """
    if result.text or result.tool_calls:
        return result
    model = result.model or requested_model
    if result.finish_reason == "length":
        raise _truncated(result, model, http_status)
    if result.reasoning:
        return result
    raise _empty_answer(model, result.provider, http_status)


def chat_result(body: Any, *, http_status: int, headers: Mapping[str, str], latency_s: float,
                requested_model: str | None = None) -> ChatResult:
    """Parse a non-streaming chat completion, raising for errors hidden in a 200."""
    if not isinstance(body, Mapping):
        raise ProviderError(
            f"OpenRouter answered with JSON that is not an object (HTTP {http_status}). Retry.",
            http_status=http_status, model=requested_model,
        )
    served = as_str(body.get("model"))
    if isinstance(body.get("error"), Mapping):
        raise error_from_body(body, http_status=http_status, headers=headers,
                              model=served or requested_model)
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], Mapping):
        raise ProviderError(
            f"The answer had no choices (HTTP {http_status}). Retry, or pick another model.",
            http_status=http_status, model=served or requested_model,
        )
    choice = choices[0]
    if choice.get("finish_reason") == "error" or isinstance(choice.get("error"), Mapping):
        raise _choice_error(choice, headers, served or requested_model)
    message = choice.get("message")
    message = message if isinstance(message, Mapping) else {}
    result = ChatResult(
        text=content_text(message.get("content")),
        model=served,
        provider=as_str(body.get("provider")),
        generation_id=as_str(body.get("id")),
        finish_reason=as_str(choice.get("finish_reason")),
        usage=Usage.from_json(body.get("usage")),
        latency_s=latency_s,
        raw=dict(body),
        reasoning=reasoning_of(message),
        reasoning_details=dicts(message.get("reasoning_details")),
        native_finish_reason=as_str(choice.get("native_finish_reason")),
        annotations=dicts(message.get("annotations")),
        tool_calls=tool_calls_of(message.get("tool_calls")),
    )
    return settle(result, http_status=http_status, requested_model=requested_model)


__all__ = [
    "chat_result",
    "error_from_body",
    "load_json",
    "rate_limit_info",
    "retry_after_seconds",
    "settle",
]
