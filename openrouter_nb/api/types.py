"""Typed results of the protocol layer: plain dataclasses, no behaviour beyond parsing helpers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._json import as_count, as_float, as_int, as_str


@dataclass(frozen=True)
class Usage:
    """Token counts and cost (credits, i.e. USD) as OpenRouter reports them.

    ``reasoning_tokens`` (part of ``completion_tokens``) and ``cached_tokens`` (part of
    ``prompt_tokens``) come from the ``*_tokens_details`` objects. A figure that is missing,
    of the wrong type or absurd (``1e400``, ``NaN``, forty digits) is ``None``: unknown.
    """

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    cost: float | None = None
    reasoning_tokens: int | None = None
    cached_tokens: int | None = None

    @classmethod
    def from_json(cls, data: Any) -> Usage | None:
        if not isinstance(data, Mapping):
            return None
        completion = data.get("completion_tokens_details")
        prompt = data.get("prompt_tokens_details")
        return cls(
            prompt_tokens=as_count(data.get("prompt_tokens")),
            completion_tokens=as_count(data.get("completion_tokens")),
            total_tokens=as_count(data.get("total_tokens")),
            cost=as_float(data.get("cost")),
            reasoning_tokens=as_count(completion.get("reasoning_tokens"))
            if isinstance(completion, Mapping) else None,
            cached_tokens=as_count(prompt.get("cached_tokens"))
            if isinstance(prompt, Mapping) else None,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "cost": self.cost,
            "reasoning_tokens": self.reasoning_tokens,
            "cached_tokens": self.cached_tokens,
        }


@dataclass(frozen=True)
class ToolCall:
    """One function call the model asked for; ``arguments`` is its raw JSON text ("{}" if none)."""

    index: int
    id: str | None
    name: str | None
    arguments: str = "{}"

    def to_wire(self) -> dict[str, Any]:
        """The call as an assistant message in the history carries it (no ``index``)."""
        return {"id": self.id, "type": "function",
                "function": {"name": self.name, "arguments": self.arguments}}


@dataclass(frozen=True)
class ChatResult:
    """One successful chat completion, streamed or not.

    ``text`` may be empty when the model answered only with ``tool_calls`` or only in
    ``reasoning`` (a reasoning model that put its whole reply there).
    """

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
    reasoning: str | None = None  # the model's thinking as text, when it showed any
    reasoning_details: tuple[dict[str, Any], ...] = field(default=(), repr=False)
    native_finish_reason: str | None = None  # the provider's own reason (``MAX_TOKENS``...)
    annotations: tuple[dict[str, Any], ...] = field(default=(), repr=False)  # files, citations
    tool_calls: tuple[ToolCall, ...] = ()

    def assistant_message(self) -> dict[str, Any]:
        """This answer as the assistant message to send back in a conversation's history.

        Carries what the reference says later turns need: ``reasoning_details`` unchanged
        (else the ``reasoning`` text), file ``annotations`` and the ``tool_calls``.
        """
        message: dict[str, Any] = {
            "role": "assistant",
            "content": None if not self.text and self.tool_calls else self.text,
        }
        if self.reasoning_details:
            message["reasoning_details"] = [dict(item) for item in self.reasoning_details]
        elif self.reasoning:
            message["reasoning"] = self.reasoning
        if self.annotations:
            message["annotations"] = [dict(item) for item in self.annotations]
        if self.tool_calls:
            message["tool_calls"] = [call.to_wire() for call in self.tool_calls]
        return message


@dataclass(frozen=True)
class StreamDelta:
    """A piece of a streamed answer, handed to ``on_delta`` callbacks as it arrives.

    ``kind`` is ``"text"`` (answer text), ``"reasoning"`` (``text`` is a piece of the
    model's thinking) or ``"tool_call"`` (``text`` is a fragment of the arguments of call
    ``tool_index``, named ``tool_name`` once known).
    """

    text: str
    model: str | None = None
    provider: str | None = None
    kind: str = "text"
    tool_index: int | None = None
    tool_name: str | None = None


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
        return cls(
            label=as_str(data.get("label")),
            is_free_tier=data.get("is_free_tier") if isinstance(data.get("is_free_tier"), bool) else None,
            daily_used=as_int(daily.get("used")),
            daily_limit=as_int(daily.get("limit")),
            daily_remaining=as_int(daily.get("remaining")),
            usage=as_float(data.get("usage")),
            limit=as_float(data.get("limit")),
            raw=data,
        )
