"""Typed results of the protocol layer: plain dataclasses, no behaviour beyond parsing helpers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Usage:
    """Token counts and cost (credits, i.e. USD) as OpenRouter reports them."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    cost: float | None = None

    @classmethod
    def from_json(cls, data: Any) -> Usage | None:
        if not isinstance(data, dict):
            return None

        def _int(name: str) -> int | None:
            value = data.get(name)
            return int(value) if isinstance(value, (int, float)) else None

        cost = data.get("cost")
        return cls(
            prompt_tokens=_int("prompt_tokens"),
            completion_tokens=_int("completion_tokens"),
            total_tokens=_int("total_tokens"),
            cost=float(cost) if isinstance(cost, (int, float)) else None,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "cost": self.cost,
        }


@dataclass(frozen=True)
class ChatResult:
    """One successful chat completion, streamed or not."""

    text: str
    model: str | None  # the model that *served* the request
    provider: str | None
    generation_id: str | None
    finish_reason: str | None
    usage: Usage | None
    latency_s: float
    ttft_s: float | None = None  # time to first token (streaming only)
    streamed: bool = False
    server: str | None = None  # the response's Server header (tells the sandbox apart)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class StreamDelta:
    """A piece of streamed text, handed to ``on_delta`` callbacks as it arrives."""

    text: str
    model: str | None = None
    provider: str | None = None


@dataclass(frozen=True)
class KeyInfo:
    """What ``GET /key`` says about the key: the parts the toolkit uses, plus the raw data."""

    label: str | None
    is_free_tier: bool | None
    daily_used: int | None  # free_model_daily_requests.used (None on older keys)
    daily_limit: int | None
    daily_remaining: int | None
    usage: float | None
    limit: float | None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, body: Any) -> KeyInfo:
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict):
            data = {}
        daily = data.get("free_model_daily_requests")
        daily = daily if isinstance(daily, dict) else {}

        def _num(value: Any) -> float | None:
            return float(value) if isinstance(value, (int, float)) else None

        def _int(value: Any) -> int | None:
            return int(value) if isinstance(value, (int, float)) else None

        return cls(
            label=data.get("label") if isinstance(data.get("label"), str) else None,
            is_free_tier=data.get("is_free_tier") if isinstance(data.get("is_free_tier"), bool) else None,
            daily_used=_int(daily.get("used")),
            daily_limit=_int(daily.get("limit")),
            daily_remaining=_int(daily.get("remaining")),
            usage=_num(data.get("usage")),
            limit=_num(data.get("limit")),
            raw=data,
        )
