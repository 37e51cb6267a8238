"""Rendering an :class:`~.compose.Answer` as the real service does: a JSON body or an SSE stream.

Stream order (reference §2.4, §2.6): a ``: OPENROUTER PROCESSING`` comment, the role chunk,
reasoning chunks (``delta.reasoning`` plus a ``delta.reasoning_details`` fragment), content
chunks, the finish chunk, the usage (a ``choices: []`` chunk, or on the finish chunk with
``usage_in_last_delta``), ``[DONE]``. When reasoning used up ``max_tokens`` the stream ends as
the real one did: a ``finish_reason: "length"`` chunk, then a chunk with a top-level
``error: {"code": 400, "message": "Token limit reached"}`` *and* the usage, then ``[DONE]``.
Waits follow the answer's :class:`~.pacing.Pace`, through the host's (injectable) ``sleep``.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Iterator, Mapping
from datetime import datetime, timezone
from typing import Any

from .catalog import FREE_ROUTER
from .compose import MID_FAULTS, Answer
from .host import ChatHost
from .reasoning import detail_fragment, reasoning_details
from .response import RecordedRequest, SandboxResponse, json_response
from .tooluse import stream_fragments

__all__ = ["COMMENT", "MIDSTREAM_ERROR", "TOKEN_LIMIT_ERROR", "completion", "generation_record",
           "render"]

COMMENT = b": OPENROUTER PROCESSING\n\n"
MIDSTREAM_ERROR = {"code": 502, "message": "Upstream provider error: connection reset mid-stream",
                   "metadata": {"error_type": "provider_unavailable"}}
TOKEN_LIMIT_ERROR = {"code": 400, "message": "Token limit reached"}
_DONE = b"data: [DONE]\n\n"


def generation_record(ans: Answer, *, streamed: bool, finish: str) -> dict[str, Any]:
    """The ``GET /generation`` ``data`` object of an answer."""
    usage = ans.usage()
    created = datetime.fromtimestamp(ans.created, tz=timezone.utc)
    return {
        "id": ans.gen_id, "upstream_id": None, "total_cost": usage["cost"],
        "cache_discount": None, "upstream_inference_cost": None,
        "created_at": created.isoformat().replace("+00:00", "Z"), "model": ans.model.id,
        "app_id": None, "streamed": streamed, "cancelled": False,
        "provider_name": ans.model.provider, "latency": int(ans.latency_s * 400) + 50,
        "moderation_latency": None, "generation_time": int(ans.latency_s * 1000) + 50,
        "finish_reason": finish, "native_finish_reason": finish, "service_tier": None,
        "tokens_prompt": usage["prompt_tokens"],
        "tokens_completion": usage["completion_tokens"],
        "native_tokens_prompt": usage["prompt_tokens"],
        "native_tokens_completion": usage["completion_tokens"],
        "native_tokens_completion_images": 0, "native_tokens_reasoning": ans.reasoning_tokens,
        "native_tokens_cached": 0, "num_media_prompt": None, "num_input_audio_prompt": None,
        "num_media_completion": None, "num_search_results": None, "num_fetches": None,
        "web_search_engine": None, "origin": "", "usage": usage["cost"], "is_byok": False,
        "external_user": None, "api_type": "completions", "preset_id": None,
        "router": FREE_ROUTER if ans.routed else None, "provider_responses": None,
        "user_agent": None, "http_referer": None, "data_region": "global",
        "workspace_id": None,
    }


def render(host: ChatHost, ans: Answer, body: Mapping[str, Any], key: str,
           rec: RecordedRequest) -> SandboxResponse:
    """The response for ``ans``: SSE when the body asks ``stream: true``, else JSON."""
    headers = {"X-Generation-Id": ans.gen_id}
    streamed = body.get("stream") is True
    failed = ans.fault in MID_FAULTS
    host.store_generation(key, generation_record(ans, streamed=streamed,
                                                 finish="error" if failed else ans.finish))
    if streamed:
        chunks = _Stream(host, ans, rec).frames()
        return SandboxResponse(200, {"Content-Type": "text/event-stream",
                                     "Cache-Control": "no-cache", **headers},
                               chunks=_split(chunks) if host.split_frames else chunks)
    host.sleep(ans.pace.total_s)
    resp = json_response(200, completion(ans), headers,
                         prefix="\n   \n\n" if host.leading_whitespace else "")
    if ans.fault == "truncated_stream":
        resp.body = resp.body[: len(resp.body) // 2]
    return resp


def _message(ans: Answer) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": ans.content, "refusal": None,
                               "reasoning": None}
    th = ans.thought
    if th is not None and th.shown:
        message["reasoning"] = th.text or None
        message["reasoning_details"] = reasoning_details(th.style, th.text, th.encrypted)
    if ans.tool_calls:
        message["tool_calls"] = ans.tool_calls
    if ans.annotations:
        message["annotations"] = ans.annotations
    return message


def completion(ans: Answer) -> dict[str, Any]:
    """The non-streamed ``chat.completion`` object."""
    message = _message(ans)
    choice: dict[str, Any] = {"logprobs": None, "finish_reason": ans.finish,
                              "native_finish_reason": ans.finish, "index": 0,
                              "message": message}
    if ans.fault in MID_FAULTS:
        message["content"] = "".join(ans.tokens[: max(1, len(ans.tokens) // 3)])
        choice["finish_reason"] = choice["native_finish_reason"] = "error"
        choice["error"] = MIDSTREAM_ERROR
    return {**ans.head(), "object": "chat.completion", "created": ans.created,
            "choices": [choice], "system_fingerprint": None, "usage": ans.usage()}


def _split(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Send every frame in two writes, cut mid-line, as TCP may deliver it."""
    try:
        for frame in chunks:
            half = max(1, len(frame) // 2)
            yield frame[:half]
            yield frame[half:]
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


def _frame(obj: Mapping[str, Any]) -> bytes:
    return b"data: " + json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode() \
        + b"\n\n"


class _Stream:
    """The SSE frames of one answer, produced lazily and paced."""

    def __init__(self, host: ChatHost, ans: Answer, rec: RecordedRequest) -> None:
        self.host, self.ans, self.rec = host, ans, rec
        self.base = {**ans.head(), "object": "chat.completion.chunk", "created": ans.created}
        # Deltas carry reasoning keys whenever this answer shows reasoning (as in §2.4).
        self.thinking = ans.thought is not None and ans.thought.shown

    def chunk(self, delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish,
                  "native_finish_reason": finish, "logprobs": None}
        return _frame({**self.base, "choices": [choice], **extra})

    def delta(self, content: str | None = "", reasoning: str | None = None,
              details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        delta: dict[str, Any] = {"role": "assistant", "content": content}
        if self.thinking:
            delta["reasoning"] = reasoning
            delta["reasoning_details"] = details or []
        return delta

    def wait(self, tokens: int) -> None:
        self.host.sleep(tokens * self.ans.pace.per_token_s)

    def frames(self) -> Iterator[bytes]:
        try:
            if self.host.processing_comments:
                yield COMMENT
            self.host.sleep(self.ans.pace.first_s)
            yield self.chunk(self.delta())
            yield from self.reasoning()
            if self.ans.exhausted:
                yield from self.token_limit()
                return
            if (yield from self.content()):
                yield from self.tail()
        finally:
            self.host.finish_record(self.rec)

    def reasoning(self) -> Iterator[bytes]:
        th = self.ans.thought
        if th is None:
            return
        for piece in th.pieces:
            self.wait(1)
            yield self.chunk(self.delta(reasoning=piece,
                                        details=[detail_fragment(th.style, piece)]))
        if th.hidden and self.host.processing_comments:
            yield COMMENT  # the keep-alive a client sees while a model thinks unseen
        self.wait(th.hidden)
        if th.encrypted is not None:
            yield self.chunk(self.delta(details=[th.encrypted]))

    def content(self) -> Generator[bytes, None, bool]:
        """Content chunks; False (as the generator's value) if a fault ended the stream."""
        ans, tokens = self.ans, self.ans.tokens
        cut = max(1, len(tokens) // 3) if ans.fault else -1
        for i, tok in enumerate(tokens):
            if self.host.processing_comments and i == len(tokens) // 2 and i > 0:
                yield COMMENT
            if i == cut and ans.fault == "truncated_stream":
                self.rec.notes.append("stream truncated")
                return False
            if i == cut and ans.fault in ("midstream_error", "midstream_error_done",
                                          "error_in_choices"):
                yield from self.midstream_error()
                return False
            self.wait(1)
            yield self.chunk(self.delta(tok))
        return True

    def midstream_error(self) -> Iterator[bytes]:
        yield _frame({**self.base, "error": MIDSTREAM_ERROR,
                      "choices": [{"index": 0, "delta": {"content": ""},
                                   "finish_reason": "error", "native_finish_reason": "error",
                                   "logprobs": None}]})
        if self.ans.fault == "midstream_error_done":
            yield _DONE

    def tail(self) -> Iterator[bytes]:
        ans = self.ans
        if ans.tool_calls:
            self.wait(ans.tool_tokens)
            for delta in stream_fragments(ans.tool_calls):  # openers, then argument pieces
                yield self.chunk(delta)
        last = {**self.delta(), "annotations": ans.annotations} if ans.annotations \
            else self.delta()
        if self.host.usage_in_last_delta:
            yield self.chunk(last, ans.finish, usage=ans.usage())
        else:
            yield self.chunk(last, ans.finish)
            yield _frame({**self.base, "choices": [], "usage": ans.usage()})
        yield _DONE

    def token_limit(self) -> Iterator[bytes]:
        """The real end of a stream whose reasoning used up ``max_tokens`` (§2.6)."""
        yield self.chunk(self.delta(), "length")
        yield _frame({**self.base, "error": TOKEN_LIMIT_ERROR,
                      "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                   "finish_reason": None, "native_finish_reason": None,
                                   "logprobs": None}],
                      "usage": self.ans.usage(extra_reasoning=1)})
        yield _DONE
