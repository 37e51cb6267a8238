"""Bounded, classified retries: what to do after a failed attempt.

- per-minute 429: wait until ``X-RateLimit-Reset`` (epoch ms), then retry;
- per-day 429: stop at once (another free model shares the same quota);
- upstream 429, provider 5xx (502, 503, 529 overloaded), timeouts (408, 524 edge),
  broken streams: short exponential backoff with jitter (honouring ``Retry-After``), or move
  to the next *explicit* fallback model;
- in-flight-budget 402: the same backoff (honouring ``Retry-After``) on the same model, since
  another model draws on the same credits;
- unavailable model: the next explicit fallback, else stop;
- auth, credits (an ordinary 402), moderation, bad request, invalid output, budget: stop.

Every retry is another request that counts against the free quota, so the default is
small (2) and never silent: each attempt is a ledger row.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Literal

from .api.errors import (
    DailyRateLimit,
    InFlightCredits,
    MidStreamError,
    MinuteRateLimit,
    ModelUnavailableError,
    OpenRouterError,
    ProviderError,
    RequestTimeout,
    UpstreamRateLimit,
)

Action = Literal["retry", "fallback", "stop"]

#: How each kind of failure is handled. ``wait_reset``: retry after the per-minute reset;
#: ``backoff``: retry after a short backoff (``Retry-After`` wins); ``fallback``: the next
#: explicit fallback, else stop; ``fallback_or_backoff``: the next fallback, else back off;
#: ``stop``: never retried (another attempt cannot help and would spend quota).
#: Looked up along the error's class hierarchy, most specific first.
RULES: dict[type[OpenRouterError], str] = {
    MinuteRateLimit: "wait_reset",
    DailyRateLimit: "stop",
    InFlightCredits: "backoff",
    ModelUnavailableError: "fallback",
    UpstreamRateLimit: "fallback_or_backoff",
    ProviderError: "fallback_or_backoff",
    RequestTimeout: "fallback_or_backoff",
    MidStreamError: "fallback_or_backoff",
    OpenRouterError: "stop",  # auth, credits, moderation, bad request, truncated, budget...
}


def rule_for(error: OpenRouterError) -> str:
    """The rule of ``RULES`` that applies to ``error``."""
    for cls in type(error).__mro__:
        if cls in RULES:
            return RULES[cls]
    return "stop"


@dataclass(frozen=True)
class Decision:
    action: Action
    wait_s: float = 0.0
    reason: str = ""


@dataclass
class RetryPolicy:
    """How many extra attempts a call may make, and how long to wait between them."""

    retries: int = 2
    backoff_base_s: float = 1.0
    backoff_max_s: float = 16.0
    minute_wait_max_s: float = 75.0
    jitter: float = 0.25
    rng: random.Random = field(default_factory=random.Random, repr=False)

    def decide(self, error: OpenRouterError, *, retries_used: int, has_fallback: bool,
               now: float) -> Decision:
        """The next step after ``error``; ``retries_used`` counts earlier retries of this call."""
        rule = rule_for(error)
        if rule == "stop":
            reason = ("daily free quota used up" if isinstance(error, DailyRateLimit)
                      else f"{error.kind} is not retryable")
            return Decision("stop", reason=reason)
        if rule in ("fallback", "fallback_or_backoff") and has_fallback:
            return Decision("fallback", reason=f"{error.kind}: trying the next fallback")
        if rule == "fallback":
            return Decision("stop", reason="model unavailable, no fallback given")
        if retries_used >= self.retries:
            return Decision("stop", reason="retries used up")
        if rule == "wait_reset":
            limit = getattr(error, "rate_limit", None)
            reset = limit.reset_epoch_s if limit else None
            wait = (reset - now + 0.25) if reset is not None else 60.0
            return Decision("retry", min(max(wait, 0.0), self.minute_wait_max_s),
                            "per-minute limit: waiting for the reset")
        return Decision("retry", self.backoff(retries_used + 1, error.retry_after_s),
                        f"{error.kind}: backing off")

    def backoff(self, retry_number: int, retry_after_s: float | None = None) -> float:
        """Exponential backoff with jitter; ``Retry-After`` wins when it is longer."""
        delay = min(self.backoff_max_s, self.backoff_base_s * 2.0 ** (retry_number - 1))
        delay *= 1 + self.jitter * (2 * self.rng.random() - 1)
        if retry_after_s is not None:
            delay = max(delay, min(retry_after_s, self.minute_wait_max_s))
        return max(0.0, delay)
