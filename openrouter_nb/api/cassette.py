"""Record and replay HTTP exchanges: an instructor records once with a real key, and the
notebooks then run identically in CI, on Binder and for students without a key.

A cassette is a JSON Lines file, one exchange per line:
``{"request": {"method", "path", "body"}, "response": {"status", "headers", "body"}}``.
The request keeps no headers at all (so no ``Authorization``), and anything shaped like an
OpenRouter key is scrubbed from both bodies. Streamed (SSE) responses are stored as the
text received and replayed chunk by chunk.

Replay answers requests in the order they were recorded; a request that is not next
is looked up among the unused ones. A request the cassette does not hold raises
:class:`ReplayMiss` (or goes to ``fallback``, e.g. the sandbox, when one is given): never a
silent wrong answer.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from .._text import redact
from .errors import CassetteError, ReplayMiss

_KEPT_HEADERS = ("content-type", "server", "x-generation-id", "retry-after", "x-ratelimit-limit",
                 "x-ratelimit-remaining", "x-ratelimit-reset")


def _path(url: httpx.URL | str) -> str:
    path = urlsplit(str(url)).path
    marker = "/api/v1/"
    return path[path.index(marker) + len(marker) - 1:] if marker in path else path


def _hashed(value: Any) -> Any:
    """``value`` with every ``data:`` URL (an attached image or PDF) replaced by its SHA-256:
    the cassette keeps what identifies the attachment, not its bytes, and a conversation that
    resends an image every turn does not store it again each time."""
    if isinstance(value, str):
        if value.startswith("data:") and len(value) > 128:
            head = value.split(",", 1)[0]
            return f"{head},sha256:{hashlib.sha256(value.encode()).hexdigest()}"
        return value
    if isinstance(value, list):
        return [_hashed(item) for item in value]
    if isinstance(value, dict):
        return {key: _hashed(item) for key, item in value.items()}
    return value


def _request_key(method: str, path: str, body: Any) -> str:
    return json.dumps([method.upper(), path, body], sort_keys=True)


def _body_of(request: httpx.Request) -> Any:
    content = request.content
    if not content:
        return None
    try:
        return json.loads(content)
    except ValueError:
        return content.decode("utf-8", "replace")


class RecordingTransport(httpx.BaseTransport):
    """Wraps a transport and appends every exchange to a cassette file."""

    def __init__(self, inner: httpx.BaseTransport, path: str | Path) -> None:
        self.inner = inner
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        auth = request.headers.get("authorization", "")
        key = auth.removeprefix("Bearer ").strip() or None
        response = self.inner.handle_request(request)
        entry_request = {"method": request.method, "path": _path(request.url),
                         "body": _hashed(json.loads(redact(json.dumps(_body_of(request)), key)))}
        headers = {k: v for k, v in response.headers.items() if k.lower() in _KEPT_HEADERS}
        chunks: list[bytes] = []

        def save() -> None:
            body = redact(b"".join(chunks).decode("utf-8", "replace"), key)
            line = json.dumps({"request": entry_request,
                               "response": {"status": response.status_code, "headers": headers,
                                            "body": body}})
            with self._lock, self.path.open("a", encoding="utf-8") as handle:
                handle.write(line + "\n")

        # The body is passed on decoded (a transport may hand over an already-read one),
        # so the outer response must not claim an encoding or length any more.
        outer_headers = [(k, v) for k, v in response.headers.multi_items()
                         if k.lower() not in ("content-encoding", "content-length")]
        return httpx.Response(response.status_code, headers=outer_headers,
                              stream=_TeeStream(response, chunks, save), request=request,
                              extensions=response.extensions)

    def close(self) -> None:
        self.inner.close()


class _TeeStream(httpx.SyncByteStream):
    """Passes chunks through as they arrive and saves the exchange once the body is read."""

    def __init__(self, response: httpx.Response, chunks: list[bytes], on_done: Any) -> None:
        self.response, self.chunks, self.on_done = response, chunks, on_done
        self.saved = False

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.response.iter_bytes():
            self.chunks.append(chunk)
            yield chunk
        self._save()

    def _save(self) -> None:
        if not self.saved:
            self.saved = True
            self.on_done()

    def close(self) -> None:
        self.response.close()
        self._save()  # a partly read body (a broken stream) is still recorded as received


class ReplayTransport(httpx.BaseTransport):
    """Answers from a cassette; unknown requests raise ``ReplayMiss`` or go to ``fallback``."""

    def __init__(self, path: str | Path, *, fallback: httpx.BaseTransport | None = None) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"No replay cassette at {self.path}. Record one with "
                                    "%openrouter record PATH (or Session(record=PATH)).")
        self.entries = load_cassette(self.path)
        self._keys = [_request_key(e["request"]["method"], e["request"]["path"],
                                   _hashed(e["request"]["body"])) for e in self.entries]
        self._used = [False] * len(self.entries)
        self._next = 0
        self.fallback = fallback
        self._lock = threading.Lock()

    def _take(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            order = list(range(self._next, len(self.entries))) + list(range(self._next))
            for index in order:
                if not self._used[index] and self._keys[index] == key:
                    self._used[index] = True
                    while self._next < len(self.entries) and self._used[self._next]:
                        self._next += 1
                    return self.entries[index]
        return None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = _body_of(request)
        key = _request_key(request.method, _path(request.url),
                           _hashed(json.loads(redact(json.dumps(body), None))))
        entry = self._take(key)
        if entry is None:
            if self.fallback is not None:
                return self.fallback.handle_request(request)
            what = _path(request.url)
            if isinstance(body, dict) and body.get("model"):
                messages = body.get("messages") or [{}]
                prompt = str(messages[-1].get("content", ""))[:40]
                what += f" (model {body['model']}, prompt {prompt!r})"
            raise ReplayMiss(f"The replay cassette {self.path.name} holds no answer for "
                             f"{request.method} {what}. Record it again with this cell, or "
                             "replay with the sandbox as fallback.")
        # A key in the cassette (any key, and the one this session sends) is never replayed.
        sent = request.headers.get("authorization", "").removeprefix("Bearer ").strip() or None
        response = entry["response"]
        headers = {name: redact(value, sent) for name, value in response["headers"].items()}
        content = redact(response["body"], sent).encode("utf-8")
        if "text/event-stream" in headers.get("content-type", ""):
            return httpx.Response(response["status"], headers=headers,
                                  stream=_Frames(content), request=request)
        return httpx.Response(response["status"], headers=headers, content=content,
                              request=request)


_SHAPE = ('{"request": {"method", "path", "body"}, "response": {"status", "headers", '
          '"body"}}')
_JSON_TYPES = {dict: "an object", list: "an array", str: "a string", int: "a number",
               float: "a number", bool: "true or false", type(None): "null"}


def load_cassette(path: Path) -> list[dict[str, Any]]:
    """The exchanges of the cassette ``path``, checked line by line; a file that cannot be
    read, is not UTF-8 text, or holds a line that is not one exchange raises
    :class:`CassetteError` naming the file (and the line)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CassetteError(f"Cannot read the cassette {path} ({exc.strerror}). Check the path, "
                            "or record it again with %openrouter record PATH.", path=path) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        at = data.count(b"\n", 0, exc.start) + 1
        raise CassetteError(f"The cassette {path} is not text: line {at} holds bytes that are "
                            "not UTF-8 (is it a cassette at all?). Record it again with "
                            "%openrouter record PATH.", path=path, line=at) from None
    entries = []
    # JSON Lines end at LF only: U+2028 and friends may sit inside a JSON string.
    for number, line in enumerate(text.split("\n"), start=1):
        if line.strip():
            entries.append(_exchange(path, number, line))
    return entries


def _exchange(path: Path, number: int, line: str) -> dict[str, Any]:
    """One line of a cassette as an exchange, or ``CassetteError`` saying what is wrong."""
    def bad(problem: str) -> CassetteError:
        return CassetteError(f"The cassette {path}, line {number}: {problem}. Each line holds "
                             f"one exchange, {_SHAPE}; fix that line or record the cassette "
                             "again.", path=path, line=number)

    try:
        entry = json.loads(line)
    except ValueError as exc:
        where = f" at column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
        raise bad(f"not valid JSON ({getattr(exc, 'msg', exc)}{where})") from None
    if not isinstance(entry, dict):
        raise bad(f"holds {_JSON_TYPES.get(type(entry), 'a value')}, not an exchange object")
    request, response = entry.get("request"), entry.get("response")
    if not isinstance(request, dict):
        raise bad('no "request" object' if request is None else '"request" is not an object')
    if not isinstance(request.get("method"), str) or not isinstance(request.get("path"), str):
        raise bad('the request needs a "method" and a "path", both strings')
    if not isinstance(response, dict):
        raise bad('no "response" object' if response is None else '"response" is not an object')
    status, headers = response.get("status"), response.get("headers", {})
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise bad('the response "status" must be an HTTP status number')
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise bad('the response "headers" must be an object of strings')
    if not isinstance(response.get("body"), str):
        raise bad('the response "body" must be a string')
    request.setdefault("body", None)
    response["headers"] = headers
    return entry


class _Frames(httpx.SyncByteStream):
    def __init__(self, content: bytes) -> None:
        self.content = content

    def __iter__(self) -> Iterator[bytes]:
        for frame in self.content.split(b"\n\n"):
            if frame:
                yield frame + b"\n\n"
