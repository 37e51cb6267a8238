"""Every way a call can fail, as one exception tree.

Each class carries its ``kind`` (the ``error_kind`` written to the ledger) and a short
message that says what to do next. Messages never contain the API key.

OpenRouterError
 ├── RateLimitError
 │    ├── MinuteRateLimit ........ rate_limit_minute   (free tier, 20/min: wait for the reset)
 │    ├── DailyRateLimit ......... rate_limit_day      (free tier, 50 or 1000/day: stop)
 │    └── UpstreamRateLimit ...... upstream_rate_limit (provider or shared capacity: retry or switch)
 ├── AuthError ................... auth
 ├── CreditsError ................ credits
 │    └── InFlightCredits ........ credits   (in-flight budget: retry after Retry-After)
 ├── ModerationError ............. moderation
 ├── ModelUnavailableError ....... model_unavailable
 ├── BadRequestError ............. bad_request
 ├── ProviderError ............... provider_error
 ├── RequestTimeout .............. timeout
 ├── NetworkError ................ network
 ├── MidStreamError .............. midstream_error
 ├── TruncatedError .............. truncated  (no text before max_tokens: not retried)
 ├── InvalidOutputError .......... invalid_output
 ├── BudgetExceeded .............. budget
 ├── SensitiveInputBlocked ....... blocked_sensitive
 ├── ReplayMiss .................. replay_miss  (a replay cassette lacks the request)
 ├── ClassBudgetExceeded ........ class_budget (over the instructor's per-person limit)
 ├── LedgerUnavailable .......... ledger_unavailable (the class database cannot be reached)
 ├── HomeFolderError ............. home_folder  (the ledger's folder or file is unusable)
 └── CassetteError ............... cassette     (a cassette file cannot be read)

The last two are not failures of a call and never appear in the ledger.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._text import redact

if TYPE_CHECKING:
    from .types import ChatResult

__all__ = [
    "ERROR_KINDS",
    "AuthError",
    "BadRequestError",
    "BudgetExceeded",
    "CassetteError",
    "ClassBudgetExceeded",
    "CreditsError",
    "DailyRateLimit",
    "HomeFolderError",
    "InFlightCredits",
    "InvalidOutputError",
    "LedgerUnavailable",
    "MidStreamError",
    "MinuteRateLimit",
    "ModelUnavailableError",
    "ModerationError",
    "NetworkError",
    "OpenRouterError",
    "ProviderError",
    "RateLimitError",
    "RateLimitInfo",
    "ReplayMiss",
    "RequestTimeout",
    "SensitiveInputBlocked",
    "TruncatedError",
    "UpstreamRateLimit",
    "error_class_for",
]


@dataclass(frozen=True)
class RateLimitInfo:
    """``X-RateLimit-*`` values from a 429 (headers or ``error.metadata.headers``)."""

    limit: int | None = None
    remaining: int | None = None
    reset_epoch_s: float | None = None  # OpenRouter sends epoch *milliseconds*; stored as seconds


class OpenRouterError(Exception):
    """Base of every error raised by openrouter_nb."""

    kind: str = "error"
    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        http_status: int | None = None,
        model: str | None = None,
        provider: str | None = None,
        retry_after_s: float | None = None,
        rate_limit: RateLimitInfo | None = None,
        metadata: dict[str, Any] | None = None,
        call_id: str | None = None,
    ) -> None:
        message = redact(message)  # a key echoed by a server never reaches a message
        super().__init__(message)
        self.message = message
        self.http_status = http_status
        self.model = model
        self.provider = provider
        self.retry_after_s = retry_after_s
        self.rate_limit = rate_limit
        self.metadata = metadata or {}
        self.call_id = call_id
        # Set by the session: partial text received before a mid-stream failure.
        self.partial_text: str = ""
        self.attempts: int = 0

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}(kind={self.kind!r}, message={self.message!r})"

    def scrub(self, api_key: str | None) -> OpenRouterError:
        """Remove ``api_key`` (and anything shaped like a key) from the message, the
        metadata and the partial text, in place; returns the error."""
        self.message = redact(self.message, api_key)
        self.args = (self.message,)
        self.metadata = _scrubbed(self.metadata, api_key)
        self.partial_text = redact(self.partial_text, api_key)
        return self


class RateLimitError(OpenRouterError):
    kind = "rate_limit"


class MinuteRateLimit(RateLimitError):
    kind = "rate_limit_minute"
    retryable = True


class DailyRateLimit(RateLimitError):
    kind = "rate_limit_day"


class UpstreamRateLimit(RateLimitError):
    kind = "upstream_rate_limit"
    retryable = True


class AuthError(OpenRouterError):
    kind = "auth"


class CreditsError(OpenRouterError):
    kind = "credits"


class InFlightCredits(CreditsError):
    """402 ``in_flight_budget_exhausted``: requests still running hold the credits; it clears
    when they settle, so it is worth a retry after ``Retry-After``."""

    retryable = True


class ModerationError(OpenRouterError):
    kind = "moderation"


class ModelUnavailableError(OpenRouterError):
    """``reason``: ``unknown_model``, ``no_endpoints``, ``free_variant_ended`` or
    ``data_policy`` (every endpoint excluded by privacy settings or preferences)."""

    kind = "model_unavailable"
    reason: str = "no_endpoints"


class BadRequestError(OpenRouterError):
    kind = "bad_request"


class ProviderError(OpenRouterError):
    kind = "provider_error"
    retryable = True


class RequestTimeout(OpenRouterError):
    kind = "timeout"
    retryable = True


class NetworkError(OpenRouterError):
    kind = "network"


class MidStreamError(OpenRouterError):
    kind = "midstream_error"
    retryable = True


class TruncatedError(OpenRouterError):
    """The answer reached ``max_tokens`` before any text (a reasoning model spent them all
    thinking). Not retryable: the same request stops at the same place. ``result`` holds
    what came back (usage, reasoning, finish reasons); ``partial_text`` is the reasoning."""

    kind = "truncated"
    result: ChatResult | None = None


class InvalidOutputError(OpenRouterError):
    kind = "invalid_output"


class BudgetExceeded(OpenRouterError):
    kind = "budget"


class ClassBudgetExceeded(BudgetExceeded):
    """The instructor's per-person limit (requests or dollars a day) is reached; checked
    centrally, in the class database, before sending."""

    kind = "class_budget"


class LedgerUnavailable(OpenRouterError):
    """The class database (``OPENROUTER_NB_LEDGER=postgresql://...``) could not be reached in
    the time allowed: nothing was sent."""

    kind = "ledger_unavailable"


class SensitiveInputBlocked(OpenRouterError):
    kind = "blocked_sensitive"


class ReplayMiss(OpenRouterError):
    """The replay cassette holds no answer for this request."""

    kind = "replay_miss"


class HomeFolderError(OpenRouterError):
    """The ledger's folder (``OPENROUTER_NB_HOME``) or file cannot be used: ``path`` names
    it, the message says what is wrong and what to do."""

    kind = "home_folder"

    def __init__(self, message: str, *, path: str | Path | None = None) -> None:
        super().__init__(message)
        self.path = Path(path) if path is not None else None


class CassetteError(OpenRouterError):
    """A record/replay cassette cannot be read: ``path`` names it, ``line`` the line (1-based)
    when one line is at fault."""

    kind = "cassette"

    def __init__(self, message: str, *, path: str | Path | None = None,
                 line: int | None = None) -> None:
        super().__init__(message)
        self.path = Path(path) if path is not None else None
        self.line = line


def _scrubbed(value: Any, api_key: str | None) -> Any:
    """``value`` with ``api_key`` and key-shaped text removed from every string in it."""
    if isinstance(value, str):
        return redact(value, api_key)
    if isinstance(value, dict):
        return {_scrubbed(k, api_key): _scrubbed(v, api_key) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_scrubbed(item, api_key) for item in value)
    return value


_CLASSES: tuple[type[OpenRouterError], ...] = (
    MinuteRateLimit,
    DailyRateLimit,
    UpstreamRateLimit,
    AuthError,
    CreditsError,
    ModerationError,
    ModelUnavailableError,
    BadRequestError,
    ProviderError,
    RequestTimeout,
    NetworkError,
    MidStreamError,
    TruncatedError,
    InvalidOutputError,
    BudgetExceeded,
    ClassBudgetExceeded,
    LedgerUnavailable,
    SensitiveInputBlocked,
    ReplayMiss,
    HomeFolderError,
    CassetteError,
)
_BY_KIND = {cls.kind: cls for cls in _CLASSES}

#: Every ``error_kind`` the ledger may hold.
ERROR_KINDS: tuple[str, ...] = tuple(_BY_KIND)


def error_class_for(kind: str) -> type[OpenRouterError]:
    """The exception class for an ``error_kind``."""
    return _BY_KIND.get(kind, OpenRouterError)
