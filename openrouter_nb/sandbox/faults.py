"""Injected faults: real-shaped error responses and the names that select them.

A fault is chosen per request with the header ``X-Sandbox-Fault: NAME`` (a comma-separated list
applies one name per model attempt of a ``models`` fallback request) or queued with
:meth:`Sandbox.queue_fault`. Faults in :data:`ERROR_FAULTS` replace the answer with an error
response built here; the others shape the answer itself (see ``chat.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .catalog import CatalogModel
from .response import SandboxResponse, error_response

__all__ = ["ERROR_FAULTS", "FALLBACK_FAULTS", "FAULTS", "FaultContext", "fault_error",
           "quota_429"]

ERROR_FAULTS = (
    "rate_limit_minute", "rate_limit_day", "upstream_429", "upstream_429_retry_after",
    "shared_capacity_429", "error_in_200", "provider_502", "service_503", "timeout",
    "request_timeout_408", "auth", "no_endpoints_404", "free_variant_ended_404",
    "data_policy_404", "moderation_403", "credits_402", "in_flight_402", "edge_timeout_524",
    "overloaded_529", "non_json",
)
ANSWER_FAULTS = (
    "error_in_choices", "midstream_error", "midstream_error_done", "truncated_stream",
    "empty_content",
)
FAULTS: tuple[str, ...] = ERROR_FAULTS + ANSWER_FAULTS

# Model-level failures after which a ``models`` fallback list moves on to the next model.
FALLBACK_FAULTS = frozenset({
    "upstream_429", "upstream_429_retry_after", "shared_capacity_429", "provider_502",
    "service_503", "request_timeout_408", "no_endpoints_404", "free_variant_ended_404",
    "data_policy_404", "moderation_403", "edge_timeout_524", "overloaded_529",
})

DOCS_URL = "https://openrouter.ai/docs/api-reference/errors-and-debugging"
PRIVACY_MSG = ("No endpoints found matching your data policy ({what}). "
               "Configure: https://openrouter.ai/settings/privacy")
IN_FLIGHT_MSG = ("This request would exceed your available credits given your current in-flight "
                 "requests. Retry after in-flight requests settle, or add credits.")
IN_FLIGHT_RETRY_AFTER_S = 2
UPSTREAM_RAW = ("{model} is temporarily rate-limited upstream. Please retry shortly, or add "
                "your own key to accumulate your rate limits: "
                "https://openrouter.ai/settings/integrations")


@dataclass(frozen=True)
class FaultContext:
    """What a fault needs to look real: the model, the caller and the quota settings."""

    model: CatalogModel
    user_id: str
    now: float
    rpm: int
    rpd: int
    window_s: float
    high_balance: bool
    prompt: str = ""
    hang_s: float = 5.0


def quota_429(kind: str, limit: int, reset_ms: int, *, high_balance: bool,
              user_id: str) -> SandboxResponse:
    """The account free-quota 429 (``kind`` "minute" or "day"), headers in body and HTTP."""
    headers = {"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": "0",
               "X-RateLimit-Reset": str(reset_ms)}
    meta: dict[str, Any] = {"headers": dict(headers), "provider_name": None}
    if kind == "minute":
        msg = "Rate limit exceeded: free-models-per-min. "
    elif high_balance:
        msg = "Rate limit exceeded: free-models-per-day-high-balance."
    else:
        msg = ("Rate limit exceeded: free-models-per-day. "
               "Add 10 credits to unlock 1000 free model requests per day")
    if kind == "day":
        meta["limit_source"] = "openrouter_free_tier_daily"
        meta["remedy_hint"] = ("Wait for the daily reset at 00:00 UTC"
                               + ("." if high_balance else
                                  ", or add 10 credits to unlock 1000 free requests per day."))
    return error_response(429, msg, meta, user_id=user_id, headers=headers)


def _availability(code: str, model: str, retryable: bool = False, **more: Any) -> dict[str, Any]:
    av: dict[str, Any] = {"code": code, "retryable": retryable, "requested_models": [model]}
    av.update(more)
    av["docs_url"] = DOCS_URL
    return av


def privacy_404(model: str, user_id: str, *, zdr: bool) -> SandboxResponse:
    """404 when provider preferences (``data_collection: deny`` / ``zdr``) exclude the model."""
    what = "Zero data retention" if zdr else "Free model training"
    excluded = "data_policy:zdr" if zdr else "data_policy:training"
    return error_response(404, PRIVACY_MSG.format(what=what), user_id=user_id,
                          availability=_availability("privacy_restricted", model,
                                                     excluded_by=[excluded]))


def _flagged(prompt: str) -> str:
    text = " ".join(prompt.split())
    return text if len(text) <= 100 else text[:48] + "..." + text[-49:]


def fault_error(name: str, ctx: FaultContext) -> SandboxResponse | None:
    """The error response of an :data:`ERROR_FAULTS` name; None for answer-shaping faults."""
    m, uid = ctx.model, ctx.user_id
    if name == "rate_limit_minute":
        reset = int((ctx.now + ctx.window_s) * 1000)
        return quota_429("minute", ctx.rpm, reset, high_balance=ctx.high_balance, user_id=uid)
    if name == "rate_limit_day":
        reset = int((ctx.now // 86400 + 1) * 86400 * 1000)
        return quota_429("day", ctx.rpd, reset, high_balance=ctx.high_balance, user_id=uid)
    if name in ("upstream_429", "upstream_429_retry_after"):
        meta: dict[str, Any] = {"raw": UPSTREAM_RAW.format(model=m.id), "provider_name": m.provider}
        headers = None
        if name == "upstream_429_retry_after":
            meta["retry_after_seconds"] = 2
            headers = {"Retry-After": "2"}
        return error_response(429, "Provider returned error", meta, user_id=uid, headers=headers)
    if name == "shared_capacity_429":
        msg = (f"Rate limit exceeded: limit_rpm/{m.canonical_slug}/"
               "4c1a9e2b-7d3f-4e1a-9b2c-sandbox00001. High demand for "
               f"{m.id} on OpenRouter - limited to 8 requests per minute. "
               "Please retry shortly.")
        meta = {"provider_name": None, "limit_source": "openrouter_shared_capacity"}
        return error_response(429, msg, meta, user_id=uid,
                              availability=_availability("capacity_exhausted", m.id, True))
    if name == "error_in_200":
        meta = {"raw": "Too Many Requests", "provider_name": m.provider}
        return error_response(429, "Provider returned error", meta, user_id=uid, status=200)
    if name == "provider_502":
        meta = {"raw": "upstream connect error or disconnect/reset before headers",
                "provider_name": m.provider}
        return error_response(502, "Provider returned error", meta, user_id=uid)
    if name == "service_503":
        return error_response(503, "Service temporarily unavailable",
                              {"error_type": "provider_overloaded"}, user_id=uid,
                              headers={"Retry-After": "1"},
                              availability=_availability("temporarily_unavailable", m.id, True,
                                                         retry_after=1))
    if name in ("timeout", "request_timeout_408"):
        resp = error_response(408, "Operation timed out. Please try again later.", user_id=uid)
        if name == "timeout":
            resp.hang_s = ctx.hang_s
        return resp
    if name == "auth":
        return error_response(401, "User not found.")
    if name == "no_endpoints_404":
        return error_response(404, f"No endpoints found for {m.id}.", user_id=uid,
                              availability=_availability("no_endpoints", m.id))
    if name == "free_variant_ended_404":
        paid = m.canonical_slug
        return error_response(404, f"The free variant of {paid} has ended. Use {paid} instead.",
                              user_id=uid,
                              availability=_availability("free_variant_ended", m.id,
                                                         fallback_models=[paid]))
    if name == "data_policy_404":
        return privacy_404(m.id, uid, zdr=False)
    if name == "moderation_403":
        meta = {"reasons": ["violence"], "flagged_input": _flagged(ctx.prompt),
                "provider_name": m.provider, "model_slug": m.id}
        return error_response(403, f"{m.id} requires moderation on {m.provider}. Your input "
                              "was flagged for \"violence\". No credits were charged.",
                              meta, user_id=uid)
    if name == "credits_402":
        return error_response(402, "Insufficient credits. Add more using "
                              "https://openrouter.ai/credits", user_id=uid)
    if name == "in_flight_402":
        meta = {"reason": "in_flight_budget_exhausted", "limit_source": "openrouter_in_flight_budget"}
        return error_response(402, IN_FLIGHT_MSG, meta, user_id=uid,
                              headers={"Retry-After": str(IN_FLIGHT_RETRY_AFTER_S)})
    if name == "edge_timeout_524":
        return error_response(524, "Request timed out. Please try again later.", user_id=uid)
    if name == "overloaded_529":
        meta = {"raw": "Overloaded", "provider_name": m.provider,
                "error_type": "provider_overloaded"}
        return error_response(529, "Provider returned error", meta, user_id=uid)
    if name == "non_json":
        return SandboxResponse(200, {"Content-Type": "text/html"}, b"<html>Bad gateway</html>")
    return None
