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
        if isinstance(error, DailyRateLimit):
            return Decision("stop", reason="daily free quota used up")
        if isinstance(error, MinuteRateLimit):
            if retries_used >= self.retries:
                return Decision("stop", reason="retries used up")
            reset = error.rate_limit.reset_epoch_s if error.rate_limit else None
            wait = (reset - now + 0.25) if reset is not None else 60.0
            wait = min(max(wait, 0.0), self.minute_wait_max_s)
            return Decision("retry", wait, "per-minute limit: waiting for the reset")
        if isinstance(error, InFlightCredits):
            if retries_used >= self.retries:
                return Decision("stop", reason="retries used up")
            return Decision("retry", self.backoff(retries_used + 1, error.retry_after_s),
                            "in-flight credits: waiting for running requests to settle")
        if isinstance(error, ModelUnavailableError):
            if has_fallback:
                return Decision("fallback", reason="model unavailable")
            return Decision("stop", reason="model unavailable, no fallback given")
        if isinstance(error, (UpstreamRateLimit, ProviderError, RequestTimeout, MidStreamError)):
            if has_fallback:
                return Decision("fallback", reason=f"{error.kind}: trying the next fallback")
            if retries_used >= self.retries:
                return Decision("stop", reason="retries used up")
            return Decision("retry", self.backoff(retries_used + 1, error.retry_after_s),
                            f"{error.kind}: backing off")
        return Decision("stop", reason=f"{error.kind} is not retryable")

    def backoff(self, retry_number: int, retry_after_s: float | None = None) -> float:
        """Exponential backoff with jitter; ``Retry-After`` wins when it is longer."""
        delay = min(self.backoff_max_s, self.backoff_base_s * 2 ** (retry_number - 1))
        delay *= 1 + self.jitter * (2 * self.rng.random() - 1)
        if retry_after_s is not None:
            delay = max(delay, min(retry_after_s, self.minute_wait_max_s))
        return max(0.0, delay)
