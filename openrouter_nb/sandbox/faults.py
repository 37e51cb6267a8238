"""Injected faults: real-shaped error responses and the names that select them.

A fault is chosen per request with the header ``X-Sandbox-Fault: NAME`` (a comma-separated list
applies one name per model attempt of a ``models`` fallback request) or queued with
:meth:`Sandbox.queue_fault`. Faults in :data:`ERROR_FAULTS` replace the answer with an error
response built here; the others (:data:`ANSWER_FAULTS`) shape the answer itself (see
``compose.py`` and ``render.py``):

* ``error_in_choices``, ``midstream_error``, ``midstream_error_done``: the provider fails after
  a third of the answer (an ``error`` in the choice, or a mid-stream error chunk);
* ``truncated_stream``: the connection ends mid-answer without ``[DONE]``;
* ``empty_content``: an empty answer (``content: ""``, no reasoning, ``finish_reason: "stop"``);
* ``reasoning_only``: the whole reply arrives in ``reasoning`` (after any thinking) with
  ``content: ""`` and ``finish_reason: "stop"``, as some reasoning models do now and then
  (``qwen/qwen3-235b-a22b`` does it by itself when the prompt says "think aloud").
"""

from __future__ import annotations

from collections.abc import Callable
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
    "empty_content", "reasoning_only",
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


def _quota(kind: str) -> Callable[[FaultContext], SandboxResponse]:
    def build(ctx: FaultContext) -> SandboxResponse:
        if kind == "minute":
            reset = int((ctx.now + ctx.window_s) * 1000)
            return quota_429("minute", ctx.rpm, reset, high_balance=ctx.high_balance,
                             user_id=ctx.user_id)
        reset = int((ctx.now // 86400 + 1) * 86400 * 1000)
        return quota_429("day", ctx.rpd, reset, high_balance=ctx.high_balance,
                         user_id=ctx.user_id)
    return build


def _upstream_429(ctx: FaultContext, retry_after: bool = False) -> SandboxResponse:
    m = ctx.model
    meta: dict[str, Any] = {"raw": UPSTREAM_RAW.format(model=m.id), "provider_name": m.provider}
    headers = None
    if retry_after:
        meta["retry_after_seconds"] = 2
        headers = {"Retry-After": "2"}
    return error_response(429, "Provider returned error", meta, user_id=ctx.user_id,
                          headers=headers)


def _shared_capacity(ctx: FaultContext) -> SandboxResponse:
    m = ctx.model
    msg = (f"Rate limit exceeded: limit_rpm/{m.canonical_slug}/"
           "4c1a9e2b-7d3f-4e1a-9b2c-sandbox00001. High demand for "
           f"{m.id} on OpenRouter - limited to 8 requests per minute. "
           "Please retry shortly.")
    meta = {"provider_name": None, "limit_source": "openrouter_shared_capacity"}
    return error_response(429, msg, meta, user_id=ctx.user_id,
                          availability=_availability("capacity_exhausted", m.id, True))


def _provider(status: int, raw: str, **more: Any) -> Callable[[FaultContext], SandboxResponse]:
    def build(ctx: FaultContext) -> SandboxResponse:
        meta = {"raw": raw, "provider_name": ctx.model.provider, **more}
        code = 429 if status == 200 else status  # error_in_200: a 429 body with HTTP 200
        return error_response(code, "Provider returned error", meta, user_id=ctx.user_id,
                              status=status)
    return build


def _service_503(ctx: FaultContext) -> SandboxResponse:
    return error_response(503, "Service temporarily unavailable",
                          {"error_type": "provider_overloaded"}, user_id=ctx.user_id,
                          headers={"Retry-After": "1"},
                          availability=_availability("temporarily_unavailable", ctx.model.id,
                                                     True, retry_after=1))


def _timeout(hang: bool) -> Callable[[FaultContext], SandboxResponse]:
    def build(ctx: FaultContext) -> SandboxResponse:
        resp = error_response(408, "Operation timed out. Please try again later.",
                              user_id=ctx.user_id)
        if hang:
            resp.hang_s = ctx.hang_s
        return resp
    return build


def _no_endpoints(ctx: FaultContext) -> SandboxResponse:
    m = ctx.model
    return error_response(404, f"No endpoints found for {m.id}.", user_id=ctx.user_id,
                          availability=_availability("no_endpoints", m.id))


def _free_variant_ended(ctx: FaultContext) -> SandboxResponse:
    m, paid = ctx.model, ctx.model.canonical_slug
    return error_response(404, f"The free variant of {paid} has ended. Use {paid} instead.",
                          user_id=ctx.user_id,
                          availability=_availability("free_variant_ended", m.id,
                                                     fallback_models=[paid]))


def _moderation(ctx: FaultContext) -> SandboxResponse:
    m = ctx.model
    meta = {"reasons": ["violence"], "flagged_input": _flagged(ctx.prompt),
            "provider_name": m.provider, "model_slug": m.id}
    return error_response(403, f"{m.id} requires moderation on {m.provider}. Your input "
                          "was flagged for \"violence\". No credits were charged.",
                          meta, user_id=ctx.user_id)


def _in_flight(ctx: FaultContext) -> SandboxResponse:
    meta = {"reason": "in_flight_budget_exhausted", "limit_source": "openrouter_in_flight_budget"}
    return error_response(402, IN_FLIGHT_MSG, meta, user_id=ctx.user_id,
                          headers={"Retry-After": str(IN_FLIGHT_RETRY_AFTER_S)})


_BUILDERS: dict[str, Callable[[FaultContext], SandboxResponse]] = {
    "rate_limit_minute": _quota("minute"),
    "rate_limit_day": _quota("day"),
    "upstream_429": _upstream_429,
    "upstream_429_retry_after": lambda ctx: _upstream_429(ctx, retry_after=True),
    "shared_capacity_429": _shared_capacity,
    "error_in_200": _provider(200, "Too Many Requests"),
    "provider_502": _provider(502, "upstream connect error or disconnect/reset before headers"),
    "service_503": _service_503,
    "timeout": _timeout(hang=True),
    "request_timeout_408": _timeout(hang=False),
    "auth": lambda ctx: error_response(401, "User not found."),
    "no_endpoints_404": _no_endpoints,
    "free_variant_ended_404": _free_variant_ended,
    "data_policy_404": lambda ctx: privacy_404(ctx.model.id, ctx.user_id, zdr=False),
    "moderation_403": _moderation,
    "credits_402": lambda ctx: error_response(402, "Insufficient credits. Add more using "
                                              "https://openrouter.ai/credits",
                                              user_id=ctx.user_id),
    "in_flight_402": _in_flight,
    "edge_timeout_524": lambda ctx: error_response(
        524, "Request timed out. Please try again later.", user_id=ctx.user_id),
    "overloaded_529": _provider(529, "Overloaded", error_type="provider_overloaded"),
    "non_json": lambda ctx: SandboxResponse(200, {"Content-Type": "text/html"},
                                            b"<html>Bad gateway</html>"),
}


def fault_error(name: str, ctx: FaultContext) -> SandboxResponse | None:
    """The error response of an :data:`ERROR_FAULTS` name; None for answer-shaping faults."""
    build = _BUILDERS.get(name)
    return build(ctx) if build is not None else None
