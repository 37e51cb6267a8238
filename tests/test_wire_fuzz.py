"""Hostile bytes on the wire (issue 15): whatever a server sends, the client returns a sound
``ChatResult`` or raises one of our ``OpenRouterError`` subclasses; nothing else, no hang.

Property-based (hypothesis). Bodies and streams shaped like the real service's are mutated
structurally (keys deleted, values swapped for other types, numbers replaced by ``1e400``,
``NaN``, ``Infinity``, forty or 4,500 digits, nesting 3,000 deep) and byte by byte (bits
flipped, bytes cut, inserted or deleted, truncation), then served over
``httpx.MockTransport``, a real httpx transport that serves the bytes given: streams in
random pieces that split characters and CRLFs. One property goes through the public API,
``Session.ask``, and counts the ledger rows: exactly one per call, whatever came back.
Input sizes are bounded, and each test has an alarm, so a hang fails instead of waiting.
"""

from __future__ import annotations

import copy
import json
import math
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import openrouter_nb as orn
from openrouter_nb.api.client import OpenRouterClient
from openrouter_nb.api.errors import ERROR_KINDS, OpenRouterError
from openrouter_nb.api.types import ChatResult, StreamDelta, ToolCall, Usage

MODEL = "fuzz/model"
KEY = "sk-or-v1-" + "0" * 64
EXAMPLES = 250  # per property; four properties

# -- the corpus: bodies and streams shaped like the real ones ---------------------------------
_USAGE = {"prompt_tokens": 43, "completion_tokens": 10, "total_tokens": 53, "cost": 0,
          "is_byok": False, "prompt_tokens_details": {"cached_tokens": 0},
          "completion_tokens_details": {"reasoning_tokens": 11, "image_tokens": 0}}


def _answer(message: dict[str, Any], finish: str = "stop") -> dict[str, Any]:
    return {"id": "gen-1", "provider": "Chutes", "model": MODEL, "object": "chat.completion",
            "choices": [{"index": 0, "finish_reason": finish, "native_finish_reason": finish,
                         "message": {"role": "assistant", **message}}], "usage": _USAGE}


BODIES: list[dict[str, Any]] = [
    _answer({"content": "Hello there", "refusal": None, "reasoning": None}),
    _answer({"content": "ok", "reasoning": "The user asks …", "reasoning_details": [
        {"type": "reasoning.text", "text": "The user asks …", "signature": "Eug", "index": 0}]}),
    _answer({"content": "", "tool_calls": [{"id": "3sniiMddS", "index": 0, "type": "function",
                                            "function": {"name": "divide",
                                                         "arguments": '{"a": 1}'}}]},
            "tool_calls"),
    _answer({"content": "", "reasoning": "Thinking hard"}, "length"),
    _answer({"content": [{"type": "text", "text": "parts"}], "annotations": [
        {"type": "file", "file": {"hash": "a1", "name": "f.pdf", "content": []}}]}),
    {"error": {"message": "Rate limit exceeded: free-models-per-day", "code": 429,
               "metadata": {"headers": {"X-RateLimit-Limit": "50", "X-RateLimit-Remaining": "0",
                                        "X-RateLimit-Reset": "1788825600000"}}}},
    {"error": {"code": 402, "message": "in flight", "metadata": {
        "reason": "in_flight_budget_exhausted", "retry_after_seconds": 3}}},
    {"error": {"code": 404, "message": "No endpoints found.", "availability": {
        "code": "constraint_filtered", "excluded_by": ["max_price"],
        "constraint": {"detail": "prompt <= 0.01"}}}},
    {"error": {"code": 403, "message": "Input was flagged", "metadata": {
        "reasons": ["violence"], "flagged_input": "…"}}},
    {"id": "gen-2", "model": MODEL, "choices": [{"index": 0, "finish_reason": "error",
                                                  "message": {"content": "par"},
                                                  "error": {"code": 502, "message": "died"}}]},
]


def _chunk(delta: dict[str, Any] | None, finish: str | None = None,
           **extra: Any) -> dict[str, Any]:
    choices = [] if delta is None else [{"index": 0, "delta": {"role": "assistant", **delta},
                                         "finish_reason": finish, "native_finish_reason": finish}]
    return {"id": "gen-3", "provider": "Minimax", "model": MODEL,
            "object": "chat.completion.chunk", "choices": choices, **extra}


STREAMS: list[list[Any]] = [
    [": OPENROUTER PROCESSING", _chunk({"content": "Hel"}), _chunk({"content": "lo"}, "stop"),
     _chunk(None, usage=_USAGE), "[DONE]"],
    [_chunk({"content": "", "reasoning": "This", "reasoning_details": [
        {"type": "reasoning.text", "text": "This", "index": 0}]}),
     _chunk({"reasoning_details": [{"type": "reasoning.text", "signature": "Et0B", "index": 0}]}),
     _chunk({"content": "4"}, "stop", usage=_USAGE), "[DONE]"],
    [_chunk({"content": "", "reasoning": "We need"}, "length"),
     _chunk({"content": ""}, error={"code": 400, "message": "Token limit reached"}, usage=_USAGE),
     "[DONE]"],
    [_chunk({"content": None, "tool_calls": [{"index": 0, "id": "toolu_1", "type": "function",
                                              "function": {"name": "tabs", "arguments": ""}}]}),
     _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"x": 1}'}}]}),
     _chunk({"content": ""}, "tool_calls"), _chunk(None, usage=_USAGE), "[DONE]"],
    [_chunk({"content": "Once upon"}),
     _chunk({"content": ""}, "error", error={"code": "server_error", "message": "gone",
                                             "metadata": {"provider_name": "X"}})],
    [_chunk(None, error={"code": 429, "message": "Provider returned error",
                         "metadata": {"raw": "rate-limited upstream", "provider_name": "G"}})],
]

# -- mutations ---------------------------------------------------------------------------------
HOSTILE_NUMBERS = ["1e400", "-1e400", "NaN", "Infinity", "-Infinity", "1" * 40, "-" + "9" * 40,
                   "1" * 4500, "1e-400", "-0", "0.5", "[" * 3000 + "]" * 3000]
HOSTILE_VALUES: list[Any] = [None, True, False, 0, -1, 2.5, "", "x", "\u2028\u0085", "\ud800",
                             [], {}, [1, "a"], {"k": None}, "[DONE]", "sk-or-v1-" + "ab" * 32]
INSERTS = [b"\r", b"\n", b"\r\n", b"\n\n", b"\xef\xbb\xbf", b"\xff", b"\xc3", "\u2028".encode(),
           b'"', b"{", b"}", b"[", b",", b":", b"\\", b"\\ud800", b"data: ", b": x\n"]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    items = value.items() if isinstance(value, dict) else enumerate(value) \
        if isinstance(value, list) else ()
    for key, item in items:
        yield (*prefix, key)
        yield from _paths(item, (*prefix, key))


def _at(value: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        value = value[key]
    return value


def _dump(value: Any, raw: dict[str, str], ascii_only: bool) -> str:
    text = json.dumps(value, ensure_ascii=ascii_only)
    for quoted, number in raw.items():
        text = text.replace(quoted, number)
    return text


def _hostile_number(draw: st.DrawFn, raw: dict[str, str]) -> str:
    """A placeholder, swapped for the raw text of a hostile number once dumped."""
    token = f"\x00hostile{len(raw)}\x00"
    raw[json.dumps(token)] = draw(st.sampled_from(HOSTILE_NUMBERS))
    return token


@st.composite
def mutated_json(draw: st.DrawFn, base: Any) -> str:
    """``base`` as JSON text after one to four structural mutations."""
    value, raw = copy.deepcopy(base), dict[str, str]()
    for _ in range(draw(st.integers(1, 4))):
        paths = list(_paths(value))
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent, key = _at(value, path[:-1]), path[-1]
        how = draw(st.sampled_from(["delete", "value", "number"]))
        if how == "delete":
            del parent[key]
        elif how == "value":
            parent[key] = copy.deepcopy(draw(st.sampled_from(HOSTILE_VALUES)))
        else:
            parent[key] = _hostile_number(draw, raw)
    return _dump(value, raw, draw(st.booleans()))


@st.composite
def hostile_numbers(draw: st.DrawFn, base: Any) -> str:
    """``base`` as JSON text with one to three of its numbers made hostile (all else kept)."""
    value, raw = copy.deepcopy(base), dict[str, str]()
    numbers = [path for path in _paths(value) if type(_at(value, path)) in (int, float)]
    for path in draw(st.lists(st.sampled_from(numbers), min_size=1, max_size=3)) if numbers else []:
        _at(value, path[:-1])[path[-1]] = _hostile_number(draw, raw)
    return _dump(value, raw, draw(st.booleans()))


def _mutated(draw: st.DrawFn, base: Any) -> str:
    how = draw(st.sampled_from(["as is", "numbers", "numbers", "structure", "structure"]))
    if how == "numbers":
        return draw(hostile_numbers(base))
    return draw(mutated_json(base)) if how == "structure" else json.dumps(base)


@st.composite
def mutated_bytes(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` after zero to four byte-level mutations."""
    out = bytearray(data)
    for _ in range(draw(st.integers(0, 4))):
        if not out:
            break
        at = draw(st.integers(0, len(out) - 1))
        how = draw(st.sampled_from(["flip", "cut", "insert", "delete"]))
        if how == "flip":
            out[at] ^= 1 << draw(st.integers(0, 7))
        elif how == "cut":
            del out[at:]
        elif how == "insert":
            out[at:at] = draw(st.sampled_from(INSERTS))
        else:
            del out[at:at + draw(st.integers(1, 8))]
    return bytes(out)


@st.composite
def body_bytes(draw: st.DrawFn) -> bytes:
    raw = _mutated(draw, draw(st.sampled_from(BODIES))).encode("utf-8", "surrogatepass")
    return draw(mutated_bytes(raw)) if draw(st.integers(0, 3)) == 0 else raw


@st.composite
def stream_bytes(draw: st.DrawFn) -> bytes:
    events: list[str] = []
    for item in draw(st.sampled_from(STREAMS)):
        if isinstance(item, str):
            events.append(item if item.startswith(":") else f"data: {item}")
            continue
        mutate = draw(st.booleans())
        events.append(f"data: {_mutated(draw, item) if mutate else json.dumps(item)}")
    if draw(st.booleans()) and events:  # drop or repeat an event
        at = draw(st.integers(0, len(events) - 1))
        repeat = draw(st.booleans())
        events[at:at + 1] = [events[at]] * 2 if repeat else []
    end = draw(st.sampled_from(["\n", "\r", "\r\n"]))
    text = ("\ufeff" if draw(st.booleans()) else "") + "".join(e + end + end for e in events)
    raw = text.encode("utf-8", "surrogatepass")  # a raw lone surrogate: invalid UTF-8 bytes
    return draw(mutated_bytes(raw)) if draw(st.integers(0, 3)) == 0 else raw


def _pieces(raw: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(cut, len(raw)) for cut in cuts})
    return [raw[a:b] for a, b in zip([0, *points], [*points, len(raw)], strict=True)]


STATUSES = st.sampled_from([200] * 6 + [400, 401, 402, 403, 404, 408, 429, 500, 502, 524])
CUTS = st.one_of(st.lists(st.integers(min_value=0, max_value=2000), max_size=25),
                st.integers(1, 8).map(lambda step: list(range(step, 2000, step))))


def _respond(status: int, pieces: list[bytes], streamed: bool) -> httpx.Response:
    kind = "text/event-stream" if streamed else "application/json"
    return httpx.Response(status, headers={"content-type": kind}, content=iter(pieces))


# -- what a sound outcome is -------------------------------------------------------------------
def _sound_text(value: Any) -> bool:
    return value is None or (isinstance(value, str) and bool(value.encode("utf-8")) >= 0)


def _check_usage(usage: Usage | None) -> None:
    if usage is None:
        return
    for name in ("prompt_tokens", "completion_tokens", "total_tokens", "reasoning_tokens",
                 "cached_tokens"):
        count = getattr(usage, name)
        assert count is None or (type(count) is int and 0 <= count <= 2**53), (name, count)
    assert usage.cost is None or (type(usage.cost) is float and math.isfinite(usage.cost))


def _check_result(result: ChatResult) -> None:
    assert isinstance(result, ChatResult)
    assert isinstance(result.text, str) and _sound_text(result.text)
    assert result.text or result.tool_calls or result.reasoning  # else it is an error
    for name in ("model", "provider", "generation_id", "finish_reason", "native_finish_reason",
                 "reasoning"):
        assert _sound_text(getattr(result, name)), name
    _check_usage(result.usage)
    assert all(isinstance(call, ToolCall) and isinstance(call.arguments, str) and call.arguments
               and type(call.index) is int for call in result.tool_calls)
    assert all(isinstance(item, dict) for item in result.reasoning_details + result.annotations)
    json.dumps(result.assistant_message())


def _check_error(error: OpenRouterError) -> None:
    assert error.kind in ERROR_KINDS
    assert isinstance(error.message, str) and error.message and _sound_text(error.message)
    assert isinstance(error.partial_text, str) and _sound_text(error.partial_text)
    assert error.http_status is None or (type(error.http_status) is int
                                         and 100 <= error.http_status <= 599)
    assert error.retry_after_s is None or math.isfinite(error.retry_after_s)
    result = getattr(error, "result", None)
    if result is not None:
        _check_usage(result.usage)


def _outcome(call: Callable[[], ChatResult]) -> tuple[Any, ...]:
    """Run ``call``; check what it gave; return it in a comparable form."""
    try:
        result = call()
    except OpenRouterError as error:
        _check_error(error)
        return type(error).__name__, error.message, error.partial_text
    _check_result(result)
    return ("ok", result.text, result.reasoning, result.reasoning_details, result.tool_calls,
            result.usage, result.model, result.provider, result.finish_reason,
            result.native_finish_reason, result.annotations)


def _client(serve: Callable[[httpx.Request], httpx.Response]) -> OpenRouterClient:
    return OpenRouterClient(KEY, "http://test/api/v1", transport=httpx.MockTransport(serve))


@pytest.fixture(autouse=True)
def _alarm() -> Iterator[None]:
    """A hang fails the test after 120 s instead of blocking the suite."""
    def hung(signum: int, frame: object) -> None:
        raise TimeoutError("the wire fuzz hung")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(120)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


# -- the attack corpus of issue 15, one by one -------------------------------------------------
def _usage_with(number: str) -> bytes:
    body = json.dumps(_answer({"content": "Kept"}))
    body = body.replace('"prompt_tokens": 43', f'"prompt_tokens": {number}')
    return body.replace('"cost": 0', f'"cost": {number}').encode()


def _sse(*payloads: str) -> bytes:
    return "".join(f"data: {payload}\n\n" for payload in payloads).encode()


TEXT_THEN_ERROR = json.dumps(_chunk({"content": "Once upon"}))
ATTACKS: list[tuple[str, bool, int, dict[str, str], bytes, Any]] = [
    *[(f"usage {number[:12]}", streamed, 200, {}, body, "Kept")
      for number in ["1e400", "NaN", "-Infinity", "1" * 40, "1" * 4500, "true", "-5", "1.5"]
      for streamed, body in [(False, _usage_with(number)),
                             (True, _sse(_usage_with(number).decode().replace(
                                 '"message"', '"delta"').replace(
                                 '"chat.completion"', '"chat.completion.chunk"'), "[DONE]"))]],
    *[(f"metadata {metadata}", True, 200, {}, _sse(TEXT_THEN_ERROR, json.dumps(
        {"error": {"code": 502, "message": "gone", "metadata": metadata}})),
       ("MidStreamError", "Once upon")) for metadata in ["text", 5, [1, 2], None, True]],
    ("metadata text, before any text", True, 200, {}, _sse(json.dumps(
        {"error": {"code": 502, "message": "gone", "metadata": "text"}})), ("ProviderError", "")),
    ("lone surrogate escape", False, 200, {},
     json.dumps(_answer({"content": "a\ud800b"})).encode(), "a\ufffdb"),
    ("content parts", False, 200, {}, json.dumps(_answer({"content": [
        {"type": "text", "text": "Hello "}, {"type": "text", "text": "parts"}]})).encode(),
     "Hello parts"),
    ("nested 3000 deep", False, 200, {}, json.dumps(_answer({"content": "x"})).encode().replace(
        b'"cost": 0', b'"cost": ' + b"[" * 3000 + b"]" * 3000), ("ProviderError", "")),
    ("reset 1e400", False, 429, {"X-RateLimit-Reset": "1e400", "Retry-After": "inf"},
     b'{"error": {"code": 429, "message": "Rate limit exceeded: free-models-per-min"}}',
     ("MinuteRateLimit", "")),
    ("reset far future", False, 429, {"X-RateLimit-Reset": "9" * 40, "Retry-After": "nan"},
     b'{"error": {"code": 429, "message": "Rate limit exceeded: free-models-per-day"}}',
     ("DailyRateLimit", "")),
    ("reasons not a list", False, 403, {}, b'{"error": {"code": 403, "message": "flagged", '
     b'"metadata": {"reasons": 5, "flagged_input": 1}}}', ("ModerationError", "")),
    ("excluded_by not a list", False, 404, {}, b'{"error": {"code": 404, "message": "none", '
     b'"availability": {"excluded_by": 7, "code": 1e400}}}', ("ModelUnavailableError", "")),
    ("code true, status 40 digits", False, 500, {}, b'{"error": {"code": true, "http_status": '
     + b"9" * 40 + b', "message": ["x"], "metadata": {"retry_after_seconds": 1e400}}}',
     ("ProviderError", "")),
    *[(f"choices {choices}", False, 200, {}, f'{{"choices": {choices}}}'.encode(),
       ("ProviderError", "")) for choices in ['{}', '"x"', "[1]", '[{"message": []}]',
                                               '[{"message": {"content": 5}}]']],
    *[(f"gzip that is not ({'stream' if streamed else 'json'})", streamed, 200,
       {"content-encoding": "gzip"}, b"\x1f\x8b not gzip at all", ("NetworkError", ""))
      for streamed in (False, True)],
    ("delta not an object", True, 200, {}, _sse('{"choices": [{"delta": 5}]}',
                                                 json.dumps(_chunk({"content": "ok"}, "stop"))),
     "ok"),
    ("choices not a list in a stream", True, 200, {}, _sse('{"choices": "abc"}', json.dumps(
        _chunk({"content": "ok"}, "stop")), "[DONE]"), "ok"),
]


@pytest.mark.parametrize(("name", "streamed", "status", "headers", "body", "expected"), ATTACKS,
                         ids=[attack[0] for attack in ATTACKS])
def test_attack(name: str, streamed: bool, status: int, headers: dict[str, str], body: bytes,
                expected: Any) -> None:
    def serve(request: httpx.Request) -> httpx.Response:
        kind = "text/event-stream" if streamed else "application/json"
        return httpx.Response(status, headers={"content-type": kind, **headers}, content=body)

    client = _client(serve)
    outcome = _outcome(lambda: client.chat({"model": MODEL, "messages": [], "stream": streamed}))
    if isinstance(expected, str):
        assert outcome[:2] == ("ok", expected)
        if name.startswith("usage"):  # the absurd figure is unknown, the others are kept
            assert outcome[5] == Usage(None, 10, 53, outcome[5].cost, 11, 0)
    else:
        assert (outcome[0], outcome[2]) == expected


# -- properties ----------------------------------------------------------------------------------
@settings(max_examples=EXAMPLES, deadline=None)
@given(raw=body_bytes(), status=STATUSES, cuts=CUTS, stream_asked=st.booleans())
def test_mutated_json_bodies_give_an_answer_or_our_error(raw: bytes, status: int,
                                                         cuts: list[int],
                                                         stream_asked: bool) -> None:
    client = _client(lambda request: _respond(status, _pieces(raw, cuts), streamed=False))
    _outcome(lambda: client.chat({"model": MODEL, "messages": [], "stream": stream_asked}))


@settings(max_examples=EXAMPLES, deadline=None)
@given(raw=stream_bytes(), cuts=CUTS)
def test_mutated_streams_give_an_answer_or_our_error(raw: bytes, cuts: list[int]) -> None:
    deltas: list[StreamDelta] = []
    client = _client(lambda request: _respond(200, _pieces(raw, cuts), streamed=True))
    _outcome(lambda: client.chat({"model": MODEL, "messages": [], "stream": True},
                                 on_delta=deltas.append))
    assert all(d.kind in ("text", "reasoning", "tool_call") and _sound_text(d.text)
               for d in deltas)


@settings(max_examples=EXAMPLES, deadline=None)
@given(raw=stream_bytes(), cuts=CUTS)
def test_a_stream_in_any_pieces_reads_like_the_whole(raw: bytes, cuts: list[int]) -> None:
    def read(pieces: list[bytes]) -> tuple[Any, ...]:
        client = _client(lambda request: _respond(200, pieces, streamed=True))
        return _outcome(lambda: client.chat({"model": MODEL, "messages": [], "stream": True}))

    assert read(_pieces(raw, cuts)) == read([raw])


@dataclass
class _Server:
    """The fuzzed server behind a session: answers a chat request with whatever bytes were
    set last (and any other request, such as the catalog, with an empty list)."""

    status: int = 200
    pieces: list[bytes] = field(default_factory=list)
    streamed: bool = False
    requests: int = 0  # chat requests

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if not request.url.path.endswith("/chat/completions"):
            return httpx.Response(200, json={"data": []})
        self.requests += 1
        return _respond(self.status, self.pieces, self.streamed)


class _Clock:
    """Time that moves only when the session waits, so pacing never really sleeps."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.0)


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> tuple[orn.Session, _Server]:
    server, clock = _Server(), _Clock()
    home: Path = tmp_path_factory.mktemp("wire-fuzz-home")
    session = orn.Session(sandbox=False, api_key=KEY, base_url="http://test/api/v1", home=home,
                          transport=httpx.MockTransport(server), clock=clock, sleep=clock.sleep)
    return session, server


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), streamed=st.booleans(), cuts=CUTS)
def test_every_call_through_the_session_is_one_ledger_row(
        fuzzed: tuple[orn.Session, _Server], data: st.DataObject, streamed: bool,
        cuts: list[int]) -> None:
    session, server = fuzzed
    raw = data.draw(stream_bytes() if streamed else body_bytes())
    server.status = 200 if streamed else data.draw(STATUSES)
    server.pieces, server.streamed = _pieces(raw, cuts), streamed
    before, sent = len(session.ledger.rows(session_id=session.session_id)), server.requests
    kind: str | None = None
    try:
        answer = session.ask("Say hello", model=MODEL, stream=data.draw(st.booleans()),
                             retries=0)
    except OpenRouterError as error:
        _check_error(error)
        kind = error.kind
    else:
        assert isinstance(answer, orn.Answer) and isinstance(answer.text, str)
    rows = session.ledger.rows(session_id=session.session_id)
    assert len(rows) == before + 1 and server.requests == sent + 1
    assert (rows[-1]["status"], rows[-1]["error_kind"]) == ("error" if kind else "ok", kind)
