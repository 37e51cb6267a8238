"""What an assistant turn holds besides its text: reasoning, tool calls, annotations.

A non-streamed answer carries them whole in ``choices[0].message``; a streamed one in
fragments spread over the ``delta`` objects, merged here as the reference says
(reference/openrouter-api-messages.md §2.3-§2.4, §3.2-§3.4, §4.4):

- ``content`` may be a string or a list of parts: the text parts are joined.
- reasoning text is ``reasoning`` (alias ``reasoning_content``), else the text of the
  ``reasoning.text`` / ``reasoning.summary`` details.
- streamed ``reasoning_details`` are grouped by ``(type, index)``: ``text``/``summary``
  concatenated in order, a late signature-only fragment kept, other fields set when they
  first carry a value; encrypted (and any other) items arrive whole and stay whole.
- streamed tool calls are merged by ``index``, falling back to ``id`` (some upstreams omit
  or reuse the index); missing or empty ``arguments`` read as ``"{}"``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._json import as_int, as_str, dicts, dumps
from .types import ToolCall

__all__ = ["DetailsMerger", "ToolCallMerger", "content_text", "details_text", "reasoning_of",
           "tool_calls_of"]

_MERGED_FIELD = {"reasoning.text": "text", "reasoning.summary": "summary"}


def content_text(content: Any) -> str:
    """``message.content`` or ``delta.content`` as text: a string, or the text parts joined."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    pieces = []
    for part in content:
        if isinstance(part, str):
            pieces.append(part)
        elif isinstance(part, Mapping) and part.get("type", "text") == "text":
            pieces.append(as_str(part.get("text")) or "")
    return "".join(pieces)


def _detail_text(detail: Mapping[str, Any]) -> str:
    name = _MERGED_FIELD.get(str(detail.get("type")))
    return (as_str(detail.get(name)) or "") if name else ""


def details_text(details: tuple[dict[str, Any], ...]) -> str:
    """The readable text of whole ``reasoning_details`` items, one paragraph per item."""
    return "\n\n".join(text for text in map(_detail_text, details) if text)


def reasoning_of(message: Mapping[str, Any]) -> str | None:
    """The reasoning text of a whole message, or ``None`` when it shows none."""
    for name in ("reasoning", "reasoning_content"):
        text = message.get(name)
        if isinstance(text, str) and text:
            return text
    return details_text(dicts(message.get("reasoning_details"))) or None


def _arguments(value: Any) -> str:
    if isinstance(value, str):
        return value if value.strip() else "{}"
    if isinstance(value, (Mapping, list)):
        return dumps(value)
    return "{}"


def tool_calls_of(value: Any) -> tuple[ToolCall, ...]:
    """The ``tool_calls`` of a whole message."""
    calls = []
    for position, item in enumerate(dicts(value)):
        function = item.get("function")
        function = function if isinstance(function, Mapping) else {}
        index = as_int(item.get("index"))
        calls.append(ToolCall(
            index=position if index is None else index,
            id=as_str(item.get("id")) or None,
            name=as_str(function.get("name")) or None,
            arguments=_arguments(function.get("arguments")),
        ))
    return tuple(calls)


class DetailsMerger:
    """Streamed ``reasoning_details`` fragments in, whole items (in first-seen order) out."""

    def __init__(self) -> None:
        self._items: list[dict[str, Any]] = []
        self._open: dict[tuple[str, int | None], dict[str, Any]] = {}

    @property
    def items(self) -> tuple[dict[str, Any], ...]:
        return tuple(dict(item) for item in self._items)

    def add(self, fragments: Any) -> str:
        """Merge one delta's ``reasoning_details``; return the reasoning text they add."""
        added = []
        for fragment in dicts(fragments):
            added.append(_detail_text(fragment))
            self._merge(fragment)
        return "".join(added)

    def _merge(self, fragment: dict[str, Any]) -> None:
        kind = str(fragment.get("type"))
        merged = _MERGED_FIELD.get(kind)
        if merged is None:  # encrypted, server tool call...: whole in one fragment
            self._items.append(fragment)
            return
        key = (kind, as_int(fragment.get("index")))
        item = self._open.get(key)
        if item is None:
            self._open[key] = fragment
            self._items.append(fragment)
            return
        for name, value in fragment.items():
            if name == merged and isinstance(value, str):
                item[name] = (as_str(item.get(name)) or "") + value
            elif name != merged and value is not None and value != "":
                item[name] = value  # e.g. the signature, which comes last on its own


class _CallBuffer:
    def __init__(self, index: int, call_id: str | None) -> None:
        self.index = index
        self.id = call_id
        self.name: str | None = None
        self.parts: list[str] = []

    def call(self) -> ToolCall:
        return ToolCall(self.index, self.id, self.name, _arguments("".join(self.parts)))


class ToolCallMerger:
    """Streamed ``delta.tool_calls`` fragments in, whole ``ToolCall`` objects out."""

    def __init__(self) -> None:
        self._calls: list[_CallBuffer] = []

    @property
    def calls(self) -> tuple[ToolCall, ...]:
        return tuple(buffer.call() for buffer in self._calls)

    def add(self, fragment: Mapping[str, Any]) -> tuple[int, str | None, str]:
        """Merge one fragment; return its call's index and name, and the arguments it adds."""
        function = fragment.get("function")
        function = function if isinstance(function, Mapping) else {}
        buffer = self._buffer(as_int(fragment.get("index")), as_str(fragment.get("id")) or None)
        buffer.name = as_str(function.get("name")) or buffer.name
        piece = function.get("arguments")
        piece = piece if isinstance(piece, str) else dumps(piece) if piece is not None else ""
        buffer.parts.append(piece)
        return buffer.index, buffer.name, piece

    def _buffer(self, index: int | None, call_id: str | None) -> _CallBuffer:
        if call_id is not None:
            for buffer in self._calls:
                if buffer.id == call_id:
                    return buffer
        if index is not None:
            for buffer in self._calls:
                if buffer.index == index and (call_id is None or buffer.id in (None, call_id)):
                    buffer.id = buffer.id or call_id
                    return buffer
        elif call_id is None and self._calls:
            return self._calls[-1]  # a continuation that names neither index nor id
        taken = {buffer.index for buffer in self._calls}
        if index is None or index in taken:
            index = max(taken, default=-1) + 1
        buffer = _CallBuffer(index, call_id)
        self._calls.append(buffer)
        return buffer
