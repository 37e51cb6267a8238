"""Plain data types of the sandbox: the response it gives and the request record it keeps."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["RecordedRequest", "SandboxResponse", "error_response", "json_response"]


@dataclass
class SandboxResponse:
    """What :meth:`Sandbox.handle` returns.

    Exactly one of ``body`` (whole payload, sent with Content-Length) or ``chunks`` (lazy SSE
    frames, sent one by one) is meaningful. ``hang_s`` marks the ``timeout`` fault: the in-process
    transport raises ``httpx.ReadTimeout``; the loopback server waits ``hang_s`` seconds and then
    sends ``body`` (a 408).
    """

    status: int
    headers: dict[str, str]
    body: bytes = b""
    chunks: Iterator[bytes] | None = None
    hang_s: float | None = None

    @property
    def streaming(self) -> bool:
        return self.chunks is not None

    def json(self) -> Any:
        """The body parsed as JSON (leading whitespace allowed); for tests."""
        return json.loads(self.body)


@dataclass
class RecordedRequest:
    """One request as the sandbox saw it (Authorization redacted to ``Bearer ***``)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any
    t_start: float  # injected clock
    perf_start: float  # time.perf_counter()
    t_end: float | None = None
    perf_end: float | None = None
    status: int | None = None
    model: str | None = None  # served model, when a model answered
    fault: str | None = None
    notes: list[str] = field(default_factory=list)


def json_response(status: int, obj: Any, headers: dict[str, str] | None = None,
                  prefix: str = "") -> SandboxResponse:
    """A JSON response with compact separators like the real service."""
    body = (prefix + json.dumps(obj, separators=(",", ":"), ensure_ascii=False)).encode()
    hdrs = {"Content-Type": "application/json"}
    hdrs.update(headers or {})
    return SandboxResponse(status, hdrs, body)


def error_response(code: int, message: str, metadata: dict[str, Any] | None = None, *,
                   user_id: str | None = None, headers: dict[str, str] | None = None,
                   status: int | None = None, **extra: Any) -> SandboxResponse:
    """The real error envelope ``{"error":{"code","message","metadata"?},"user_id"?}``.

    ``extra`` adds fields inside ``error`` (e.g. ``availability``); ``status`` defaults to code.
    """
    err: dict[str, Any] = {"message": message, "code": code}
    if metadata is not None:
        err["metadata"] = metadata
    err.update(extra)
    obj: dict[str, Any] = {"error": err}
    if user_id is not None:
        obj["user_id"] = user_id
    return json_response(code if status is None else status, obj, headers)
