"""Streamed chat completions: SSE ``data`` payloads in, text deltas and a result out.

Usage is read from whichever chunk carries it (the docs say a last chunk with empty
``choices``; real free-model streams attach it to a delta chunk). An ``error`` event ends
the stream: before any text it is classified like an ordinary error (e.g. an upstream 429),
after some text it is a ``MidStreamError`` that keeps the partial answer. A stream that ends
with neither ``[DONE]`` nor a finish reason was cut short.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from .errors import MidStreamError, OpenRouterError
from .parse import _empty_answer, _snippet, error_from_body, load_json
from .sse import DONE
from .types import ChatResult, Usage

__all__ = ["StreamAccumulator"]


class StreamAccumulator:
    """Feed it SSE ``data`` payloads; it returns text deltas and builds the final result.

    Usage is read from whichever chunk carries it (the docs say a last chunk with empty
    ``choices``; real free-model streams attach it to a delta chunk).
    """

    def __init__(self, *, requested_model: str | None, started: float,
                 clock: Any = time.perf_counter) -> None:
        self.requested_model = requested_model
        self.started = started
        self._clock = clock
        self.parts: list[str] = []
        self.model: str | None = None
        self.provider: str | None = None
        self.generation_id: str | None = None
        self.finish_reason: str | None = None
        self.usage: Usage | None = None
        self.ttft_s: float | None = None
        self.done = False
        self.chunks = 0
        self.tool_calls = False

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def feed(self, payload: str) -> str:
        """Take one ``data`` payload; return the text it adds ('' for none)."""
        if payload.strip() == DONE:
            self.done = True
            return ""
        try:
            chunk = load_json(payload)
        except ValueError:
            raise MidStreamError(
                f"The stream carried a chunk that is not JSON: {_snippet(payload)!r}. Retry.",
                model=self.model or self.requested_model, provider=self.provider,
            ) from None
        if not isinstance(chunk, Mapping):
            return ""
        self.chunks += 1
        self.model = chunk.get("model") or self.model
        self.provider = chunk.get("provider") or self.provider
        self.generation_id = chunk.get("id") or self.generation_id
        if chunk.get("usage") is not None:
            self.usage = Usage.from_json(chunk.get("usage")) or self.usage
        if isinstance(chunk.get("error"), Mapping):
            raise self._stream_error(chunk)
        added = []
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, Mapping):
                continue
            delta = choice.get("delta") if isinstance(choice.get("delta"), Mapping) else {}
            content = delta.get("content")
            if delta.get("tool_calls"):
                self.tool_calls = True
            if isinstance(content, str) and content:
                added.append(content)
            if choice.get("finish_reason") == "error":
                raise self._stream_error({**chunk, "error": choice.get("error") or {}})
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        text = "".join(added)
        if text:
            if self.ttft_s is None:
                self.ttft_s = self._clock() - self.started
            self.parts.append(text)
        return text

    def _stream_error(self, chunk: Mapping[str, Any]) -> OpenRouterError:
        model = self.model or self.requested_model
        if not self.parts:
            # Nothing shown yet: classify like an ordinary error (e.g. an upstream 429).
            return error_from_body(chunk, http_status=200, model=model)
        error = chunk.get("error") or {}
        message = str(error.get("message") or "provider error") if isinstance(error, Mapping) else ""
        failure = MidStreamError(
            f"The stream broke off after {len(self.text)} characters{f' ({model})' if model else ''}"
            f": {_snippet(message)}. The partial answer is kept; retry for a whole one.",
            http_status=200, model=model, provider=self.provider,
            metadata=dict(error.get("metadata") or {}) if isinstance(error, Mapping) else {},
        )
        failure.partial_text = self.text
        return failure

    def result(self) -> ChatResult:
        """The finished result; raises ``MidStreamError`` if the stream was cut short."""
        if not self.done and self.finish_reason is None:
            model = self.model or self.requested_model
            failure = MidStreamError(
                f"The stream ended early after {len(self.text)} characters"
                f"{f' ({model})' if model else ''}, with no finish reason. Retry.",
                http_status=200, model=model, provider=self.provider,
            )
            failure.partial_text = self.text
            raise failure
        if not self.text and not self.tool_calls:
            raise _empty_answer(self.model or self.requested_model, self.provider, 200)
        return ChatResult(
            text=self.text,
            model=self.model,
            provider=self.provider,
            generation_id=self.generation_id,
            finish_reason=self.finish_reason,
            usage=self.usage,
            latency_s=self._clock() - self.started,
            ttft_s=self.ttft_s,
            streamed=True,
        )
