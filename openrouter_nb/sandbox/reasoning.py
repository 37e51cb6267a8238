"""Reasoning models: what a request asks (``reasoning``, ``include_reasoning``,
``reasoning_effort``), how long a model thinks, and the shapes its reasoning comes back in.

A catalog model that reasons carries a :class:`ReasoningSpec`: its typical reasoning length per
effort, its default effort, whether reasoning is ``mandatory``, and the ``style`` of its
``reasoning_details`` (``"text"``: one ``reasoning.text`` item, ``format: "unknown"``, as open
models behind OpenRouter return it; ``"openai"``: a ``reasoning.summary`` plus a
``reasoning.encrypted`` item, ``format: "openai-responses-v1"``, as GPT-5 models do).

Rules (reference §2.1-2.2): reasoning is on by default at the model's default effort;
``effort`` picks a level (unsupported levels snap to the nearest supported one); a
``reasoning.max_tokens`` budget caps the length instead; ``exclude: true`` (or the legacy
``include_reasoning: false``) still spends and counts the tokens but returns no text;
``enabled: false`` or ``effort: "none"`` turn it off, except on a ``mandatory`` model (400).
The docs' effort shares of ``max_tokens`` are *not* applied: real models were seen spending
the whole budget (§2.1 CONFLICT), which is what makes ``max_tokens`` exhaustion teachable.
Lengths vary by about 8 % with the prompt, deterministically.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["EFFORTS", "MANDATORY_MSG", "ReasoningPlan", "ReasoningRefused", "ReasoningSpec",
           "check_request", "detail_fragment", "encrypted_detail", "plan_reasoning",
           "reasoning_details"]

EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")  # weakest first
MANDATORY_MSG = "Reasoning is mandatory for this endpoint and cannot be disabled."
TEXT_FORMAT = "unknown"
OPENAI_FORMAT = "openai-responses-v1"
SUMMARY_TOKENS = 40  # an "openai" style model shows a summary of at most this many tokens


class ReasoningRefused(ValueError):
    """A request the service refuses with a 400 (``model_level``: only this model refuses)."""

    def __init__(self, message: str, *, model_level: bool) -> None:
        super().__init__(message)
        self.model_level = model_level


@dataclass(frozen=True)
class ReasoningSpec:
    """How a catalog model reasons: typical tokens per effort, defaults and detail style."""

    tokens: tuple[tuple[str, int], ...]  # (effort, typical reasoning tokens), weakest first
    default_effort: str = "medium"
    mandatory: bool = False
    style: str = "text"  # "text" or "openai"
    quantum: int = 1  # reasoning token counts are multiples of this (GPT-5: 64)

    @property
    def efforts(self) -> tuple[str, ...]:
        return tuple(e for e, _ in self.tokens)

    def to_api(self) -> dict[str, Any]:
        """The catalog ``reasoning`` object (supported efforts highest first)."""
        return {"mandatory": self.mandatory, "supported_efforts": list(reversed(self.efforts)),
                "default_effort": self.default_effort}

    def snap(self, effort: str) -> str:
        """The supported effort nearest to ``effort`` (ties go to the weaker one)."""
        rank = EFFORTS.index(effort)
        return min(self.efforts, key=lambda e: (abs(EFFORTS.index(e) - rank), EFFORTS.index(e)))

    def typical(self, effort: str) -> int:
        return dict(self.tokens)[self.snap(effort)]


@dataclass(frozen=True)
class ReasoningPlan:
    """What one answer does: think ``tokens`` tokens at ``effort``; show them unless excluded."""

    tokens: int
    effort: str
    exclude: bool
    style: str


def _request(body: Mapping[str, Any]) -> tuple[Mapping[str, Any], Any]:
    raw = body.get("reasoning")
    if raw is not None and not isinstance(raw, Mapping):
        raise ReasoningRefused("'reasoning' must be an object.", model_level=False)
    raw = raw or {}
    effort = raw.get("effort", body.get("reasoning_effort"))
    if effort is not None and effort not in EFFORTS:
        raise ReasoningRefused(f"Invalid reasoning effort {effort!r}: expected one of "
                               f"{', '.join(reversed(EFFORTS))}.", model_level=False)
    budget = raw.get("max_tokens")
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int)
                               or budget < 0):
        raise ReasoningRefused("'reasoning.max_tokens' must be a non-negative integer.",
                               model_level=False)
    return raw, effort


def check_request(body: Mapping[str, Any]) -> None:
    """Raise :class:`ReasoningRefused` (request-level) for a malformed reasoning request."""
    _request(body)


def _jitter(typical: int, salt: int) -> int:
    return round(typical * (1 + ((salt % 17) - 8) / 100))


def plan_reasoning(spec: ReasoningSpec | None, body: Mapping[str, Any],
                   salt: int) -> ReasoningPlan | None:
    """The reasoning of one answer, or None when the model does not reason for it.

    Raises :class:`ReasoningRefused` for a malformed request or for turning reasoning off on a
    ``mandatory`` model. ``salt`` (a digest of the prompt) varies lengths by about 8 %.
    """
    raw, effort = _request(body)
    include = body.get("include_reasoning")
    off = raw.get("enabled") is False or effort == "none"
    if spec is None:
        return None
    if spec.mandatory and (off or include is False):
        raise ReasoningRefused(MANDATORY_MSG, model_level=True)
    if off:
        return None
    exclude = raw.get("exclude") is True or include is False
    level = spec.snap(effort or spec.default_effort)
    budget = raw.get("max_tokens")
    tokens = _jitter(spec.typical(level), salt)
    if budget is not None:
        tokens = min(budget, _jitter(spec.typical("max"), salt))
    tokens = max(spec.quantum, tokens // spec.quantum * spec.quantum) if tokens else 0
    return ReasoningPlan(tokens, level, exclude, spec.style)


# --- shapes ------------------------------------------------------------------------------

def encrypted_detail(seed: object, tokens: int) -> dict[str, Any]:
    """A ``reasoning.encrypted`` item: an ``rs_…`` id and opaque data sized by ``tokens``."""
    h = hashlib.sha256(repr(seed).encode()).digest()
    blob = (h * (1 + tokens // 16))[: max(24, tokens * 3)]
    data = "gAAAAA" + base64.urlsafe_b64encode(blob).decode().rstrip("=")
    return {"type": "reasoning.encrypted", "data": data, "id": "rs_" + h.hex()[:48],
            "format": OPENAI_FORMAT, "index": 0}


def detail_fragment(style: str, text: str) -> dict[str, Any]:
    """The ``reasoning_details`` item carrying ``text`` (whole or one streamed piece)."""
    if style == "openai":
        return {"type": "reasoning.summary", "summary": text, "format": OPENAI_FORMAT,
                "index": 0}
    return {"type": "reasoning.text", "text": text, "format": TEXT_FORMAT, "index": 0}


def reasoning_details(style: str, text: str, encrypted: dict[str, Any] | None
                      ) -> list[dict[str, Any]]:
    """The non-streamed ``message.reasoning_details`` array."""
    items = [detail_fragment(style, text)] if text or style != "openai" else []
    return items + ([encrypted] if encrypted is not None else [])
