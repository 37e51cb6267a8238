"""Streamed chat completions: SSE ``data`` payloads in, deltas and a result out.

Each payload may add answer text, reasoning (``delta.reasoning`` or the text of
``delta.reasoning_details``) and tool-call fragments; each becomes a ``StreamDelta`` of its
kind. Usage is read from whichever chunk carries it (the docs say a last chunk with empty
``choices``; real streams attach it to a delta chunk or repeat the finish chunk).

An ``error`` event ends the stream: before any text it is classified like an ordinary error
(e.g. an upstream 429), after some text it is a ``MidStreamError`` that keeps the partial
answer. One exception: after ``finish_reason: "length"`` (or with ``Token limit reached``),
the error event that real streams send with the usage only marks the cut at ``max_tokens``
(reference/openrouter-api-messages.md §2.6), and the stream ends like any other. A stream
that ends with neither ``[DONE]`` nor a finish reason was cut short.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from ._json import as_str, dicts, load_json
from .assistant import DetailsMerger, ToolCallMerger, content_text
from .errors import MidStreamError, OpenRouterError
from .parse import _snippet, error_from_body, settle
from .sse import DONE
from .types import ChatResult, StreamDelta, Usage

__all__ = ["StreamAccumulator"]


def _is_token_limit(error: Mapping[str, Any]) -> bool:
    metadata = error.get("metadata")
    kind = metadata.get("error_type") if isinstance(metadata, Mapping) else None
    return kind == "max_tokens_exceeded" or "token limit reached" in str(
        error.get("message") or "").lower()


class StreamAccumulator:
    """Feed it SSE ``data`` payloads; it returns the deltas each adds and builds the result."""

    def __init__(self, *, requested_model: str | None, started: float,
                 clock: Any = time.perf_counter) -> None:
        self.requested_model = requested_model
        self.started = started
        self._clock = clock
        self.parts: list[str] = []
        self.reasoning_parts: list[str] = []
        self.model: str | None = None
        self.provider: str | None = None
        self.generation_id: str | None = None
        self.finish_reason: str | None = None
        self.native_finish_reason: str | None = None
        self.usage: Usage | None = None
        self.ttft_s: float | None = None
        self.server: str | None = None  # set by the client from the response headers
        self.done = False
        self.chunks = 0
        self._details = DetailsMerger()
        self._tools = ToolCallMerger()
        self._annotations: list[dict[str, Any]] = []

    @property
    def text(self) -> str:
        return "".join(self.parts)

    @property
    def reasoning(self) -> str:
        return "".join(self.reasoning_parts)

    def feed(self, payload: str) -> list[StreamDelta]:
        """Take one ``data`` payload; return the deltas it adds, in order (often none)."""
        stripped = payload.strip()
        if stripped == DONE:
            self.done = True
        if stripped == DONE or not stripped:  # an empty ``data:`` is a keep-alive, too
            return []
        try:
            chunk = load_json(payload)
        except ValueError:
            raise MidStreamError(
                f"The stream carried a chunk that is not JSON: {_snippet(payload)!r}. Retry.",
                model=self.model or self.requested_model, provider=self.provider,
            ) from None
        if not isinstance(chunk, Mapping):
            return []
        self.chunks += 1
        self._read_envelope(chunk)
        error = chunk.get("error")
        if isinstance(error, Mapping) and not self._marks_length_cut(error):
            raise self._stream_error(chunk)
        choices = chunk.get("choices")
        deltas: list[StreamDelta] = []
        for choice in choices if isinstance(choices, list) else []:
            if isinstance(choice, Mapping):
                deltas.extend(self._read_choice(choice, chunk))
        if deltas and self.ttft_s is None:
            self.ttft_s = self._clock() - self.started
        return deltas

    def _read_envelope(self, chunk: Mapping[str, Any]) -> None:
        self.model = as_str(chunk.get("model")) or self.model
        self.provider = as_str(chunk.get("provider")) or self.provider
        self.generation_id = as_str(chunk.get("id")) or self.generation_id
        if chunk.get("usage") is not None:
            self.usage = Usage.from_json(chunk.get("usage")) or self.usage

    def _marks_length_cut(self, error: Mapping[str, Any]) -> bool:
        """Whether an error event only marks the cut at ``max_tokens`` (§2.6)."""
        if self.finish_reason == "length" or _is_token_limit(error):
            self.finish_reason = "length"
            return True
        return False

    def _read_choice(self, choice: Mapping[str, Any], chunk: Mapping[str, Any]
                     ) -> list[StreamDelta]:
        delta = choice.get("delta")
        delta = delta if isinstance(delta, Mapping) else {}
        deltas = []
        thought = self._reasoning_piece(delta)
        if thought:
            self.reasoning_parts.append(thought)
            deltas.append(self._delta(thought, "reasoning"))
        text = content_text(delta.get("content"))
        if text:
            self.parts.append(text)
            deltas.append(self._delta(text, "text"))
        for fragment in dicts(delta.get("tool_calls")):
            index, name, piece = self._tools.add(fragment)
            if piece or name:
                deltas.append(self._delta(piece, "tool_call", index, name))
        self._annotations.extend(dicts(delta.get("annotations")))
        finish = choice.get("finish_reason")
        if finish == "error":
            raise self._stream_error({**chunk, "error": choice.get("error") or {}})
        self.finish_reason = as_str(finish) or self.finish_reason
        self.native_finish_reason = (as_str(choice.get("native_finish_reason"))
                                     or self.native_finish_reason)
        return deltas

    def _reasoning_piece(self, delta: Mapping[str, Any]) -> str:
        # The same thought arrives in ``reasoning`` and in the details' text: show it once.
        from_details = self._details.add(delta.get("reasoning_details"))
        for name in ("reasoning", "reasoning_content"):
            value = delta.get(name)
            if isinstance(value, str) and value:
                return value
        return from_details

    def _delta(self, text: str, kind: str, tool_index: int | None = None,
               tool_name: str | None = None) -> StreamDelta:
        return StreamDelta(text, self.model, self.provider, kind, tool_index, tool_name)

    def _stream_error(self, chunk: Mapping[str, Any]) -> OpenRouterError:
        model = self.model or self.requested_model
        if not self.parts:
            # Nothing shown yet: classify like an ordinary error (e.g. an upstream 429).
            return error_from_body(chunk, http_status=200, model=model)
        error = chunk.get("error")
        error = error if isinstance(error, Mapping) else {}
        metadata = error.get("metadata")
        message = str(error.get("message") or "provider error")
        failure = MidStreamError(
            f"The stream broke off after {len(self.text)} characters{f' ({model})' if model else ''}"
            f": {_snippet(message)}. The partial answer is kept; retry for a whole one.",
            http_status=200, model=model, provider=self.provider,
            metadata=dict(metadata) if isinstance(metadata, Mapping) else {},
        )
        failure.partial_text = self.text
        return failure

    def result(self) -> ChatResult:
        """The finished result; raises ``MidStreamError`` if the stream was cut short, and
        what ``settle`` raises for an answer without text."""
        if not self.done and self.finish_reason is None:
            model = self.model or self.requested_model
            failure = MidStreamError(
                f"The stream ended early after {len(self.text)} characters"
                f"{f' ({model})' if model else ''}, with no finish reason. Retry.",
                http_status=200, model=model, provider=self.provider,
            )
            failure.partial_text = self.text
            raise failure
        result = ChatResult(
            text=self.text,
            model=self.model,
            provider=self.provider,
            generation_id=self.generation_id,
            finish_reason=self.finish_reason,
            usage=self.usage,
            latency_s=self._clock() - self.started,
            ttft_s=self.ttft_s,
            streamed=True,
            server=self.server,
            reasoning=self.reasoning or None,
            reasoning_details=self._details.items,
            native_finish_reason=self.native_finish_reason,
            annotations=tuple(self._annotations),
            tool_calls=self._tools.calls,
        )
        return settle(result, http_status=200, requested_model=self.requested_model)
