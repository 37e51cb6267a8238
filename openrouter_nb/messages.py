"""Messages made of parts: what a request sends and what a conversation keeps.

Plain, immutable values in the spirit of ``llm/parts.py``: two equal messages are equal, and
identity (call ids, ledger rows) lives elsewhere. A ``Message`` has a role and a tuple of
parts; an assistant message also keeps what the reference says must be echoed on later
turns (``reasoning_details``, file ``annotations``, ``tool_calls``) in ``extra``, unchanged.

``to_wire()`` gives the JSON OpenRouter takes (a lone text part is sent as a plain string,
as every client does); ``Message.from_wire`` reads one back (a resumed conversation, a
cassette), accepting ``content`` as a string, a list of parts or ``null``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ROLES", "Message", "Part", "TextPart", "assistant", "system", "text_of", "user"]

ROLES = ("system", "developer", "user", "assistant", "tool")

#: Assistant fields that later turns must send back unchanged (reference §1.4, §2.7, §4.4).
ECHOED_FIELDS = ("reasoning_details", "reasoning", "annotations", "tool_calls")


@dataclass(frozen=True)
class TextPart:
    """Plain text."""

    text: str

    def to_wire(self) -> dict[str, Any]:
        return {"type": "text", "text": self.text}


@dataclass(frozen=True)
class Part:
    """Any other content part (``image_url``, ``file``, ``input_audio``...), kept as sent."""

    type: str
    payload: str  # the part's JSON, so the value stays hashable and immutable

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> Part:
        return cls(str(data.get("type", "")), json.dumps(dict(data), sort_keys=True))

    def to_wire(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.payload)
        return value


AnyPart = TextPart | Part


@dataclass(frozen=True)
class Message:
    """One message: a role, its parts, and (assistant, tool) the fields echoed back later."""

    role: str
    parts: tuple[AnyPart, ...] = ()
    extra: tuple[tuple[str, str], ...] = field(default=(), repr=False)  # name -> JSON

    @property
    def text(self) -> str:
        """The text parts joined (what a person reads)."""
        return "".join(p.text for p in self.parts if isinstance(p, TextPart))

    def get(self, name: str) -> Any:
        """An echoed field (``reasoning_details``, ``tool_calls``...) or ``None``."""
        for key, value in self.extra:
            if key == name:
                return json.loads(value)
        return None

    def to_wire(self) -> dict[str, Any]:
        """The JSON OpenRouter takes for this message."""
        wire: dict[str, Any] = {"role": self.role}
        if len(self.parts) == 1 and isinstance(self.parts[0], TextPart):
            wire["content"] = self.parts[0].text
        elif self.parts:
            wire["content"] = [part.to_wire() for part in self.parts]
        else:
            wire["content"] = None if self.get("tool_calls") else ""
        for key, value in self.extra:
            wire[key] = json.loads(value)
        return wire

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> Message:
        """Read a message in OpenRouter's JSON form; ``ValueError`` for what is not one."""
        if not isinstance(data, Mapping):
            raise ValueError(f"a message must be an object, not {type(data).__name__}")
        role = data.get("role")
        if role not in ROLES:
            raise ValueError(f"a message's role must be one of {', '.join(ROLES)}, not {role!r}")
        extra = tuple((key, json.dumps(data[key], sort_keys=True)) for key in data
                      if key not in ("role", "content") and data[key] is not None)
        return cls(role, _parts_of(data.get("content")), extra)


def _parts_of(content: Any) -> tuple[AnyPart, ...]:
    if content is None or content == "":
        return ()
    if isinstance(content, str):
        return (TextPart(content),)
    if isinstance(content, list):
        parts: list[AnyPart] = []
        for item in content:
            if isinstance(item, str):
                parts.append(TextPart(item))
            elif isinstance(item, Mapping) and item.get("type") == "text" and set(item) <= {
                    "type", "text"} and isinstance(item.get("text"), str):
                parts.append(TextPart(item["text"]))
            elif isinstance(item, Mapping):
                parts.append(Part.of(item))
            else:
                raise ValueError(f"a content part must be an object, not {type(item).__name__}")
        return tuple(parts)
    raise ValueError(f"content must be text or a list of parts, not {type(content).__name__}")


def _message(role: str, content: str | Iterable[AnyPart | Mapping[str, Any]]) -> Message:
    if isinstance(content, str):
        return Message(role, (TextPart(content),) if content else ())
    parts = tuple(p if isinstance(p, (TextPart, Part)) else _parts_of([p])[0] for p in content)
    return Message(role, parts)


def user(content: str | Iterable[AnyPart | Mapping[str, Any]]) -> Message:
    """A user message from text or parts."""
    return _message("user", content)


def system(text: str) -> Message:
    """A system message."""
    return _message("system", text)


def assistant(wire: Mapping[str, Any]) -> Message:
    """An assistant message from the JSON a result gives for history (``assistant_message()``)."""
    return Message.from_wire({**wire, "role": "assistant"})


def text_of(messages: Sequence[Message], role: str = "user") -> str:
    """The text of the last message with ``role`` (the prompt the ledger keeps)."""
    for message in reversed(messages):
        if message.role == role:
            return message.text
    return ""
