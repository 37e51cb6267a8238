"""In-process httpx transport around a :class:`Sandbox`: no sockets, real httpx responses."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx

from .app import Sandbox

__all__ = ["SERVER_NAME", "SandboxTransport"]

SERVER_NAME = "openrouter-nb-sandbox"  # the Server header, as the loopback server sends it


class _ChunkStream(httpx.SyncByteStream):
    """Yields the sandbox's SSE frames lazily, so a client sees them as they are produced."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        yield from self._chunks

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()


class SandboxTransport(httpx.BaseTransport):
    """``httpx.Client(transport=SandboxTransport())`` talks to an in-process sandbox.

    Keyword arguments build the :class:`Sandbox`, e.g. ``SandboxTransport(speed="realistic")``
    for answers streamed at each model's speed (the default ``"instant"`` never waits).

    Thread-safe: the sandbox locks its own state. The ``timeout`` fault raises
    ``httpx.ReadTimeout`` as a real hung server would for a client with a read timeout.
    """

    def __init__(self, sandbox: Sandbox | None = None, **sandbox_kwargs: Any) -> None:
        if sandbox is not None and sandbox_kwargs:
            raise TypeError("pass either a Sandbox or Sandbox keyword arguments, not both")
        self.sandbox = sandbox if sandbox is not None else Sandbox(**sandbox_kwargs)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        path = request.url.raw_path.decode("ascii")
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in request.headers.raw}
        resp = self.sandbox.handle(request.method, path, headers, body)
        resp.headers.setdefault("Server", SERVER_NAME)
        if resp.hang_s is not None:
            raise httpx.ReadTimeout("sandbox: simulated timeout", request=request)
        if resp.chunks is not None:
            return httpx.Response(resp.status, headers=resp.headers,
                                  stream=_ChunkStream(resp.chunks), request=request)
        return httpx.Response(resp.status, headers=resp.headers, content=resp.body,
                              request=request)
