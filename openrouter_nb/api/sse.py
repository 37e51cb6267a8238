"""Server-sent events, decoded by the WHATWG event-stream rules, incrementally from bytes.

The rules (html.spec.whatwg.org, "Parsing an event stream"): the bytes are UTF-8 (invalid
sequences become U+FFFD) and one leading byte-order mark is dropped; lines end at CRLF, LF
or CR, and nowhere else (not at U+2028, U+2029, U+0085, form feed or vertical tab, which
JSON strings may hold raw); a line starting with ``:`` is a comment; ``name: value`` loses
one space after the colon, and a line without a colon is a field with an empty value;
``data`` lines are joined with ``\\n``; ``event``, ``id`` and ``retry`` are kept, other
fields ignored; a blank line dispatches the event, unless it has no ``data`` line.

The decoder takes the bytes as they come, so a character or a CRLF split between two
network reads is read whole. OpenRouter streams ``data: <json>`` events, ends with
``data: [DONE]`` and sends keep-alive comments (``: OPENROUTER PROCESSING``), which naive
parsers feed to ``json.loads``; ``[DONE]`` is left to the caller, so it can tell a finished
stream from a cut one.

One deliberate departure at the end of the stream: the spec drops an event that lacks its
closing blank line. Here such an event is still dispatched when all of its lines ended
(servers that end with ``data: [DONE]\\n`` exist, and a late usage chunk is worth keeping),
while a last line without its line end is the cut itself and is dropped, as the spec says.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

__all__ = ["DONE", "SSEDecoder", "ServerSentEvent", "iter_sse_data", "iter_sse_events"]

DONE = "[DONE]"

_MAX_RETRY_DIGITS = 15


@dataclass(frozen=True)
class ServerSentEvent:
    """One dispatched event: its ``data`` (lines joined with ``\\n``) and the other fields."""

    data: str
    event: str = "message"
    id: str = ""  # the last event id seen so far
    retry: int | None = None  # the last reconnection time (ms) seen so far


class SSEDecoder:
    """Bytes in (``feed``, then ``close`` at the end), dispatched events out."""

    def __init__(self) -> None:
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._started = False  # past the first character (where a byte-order mark may be)
        self._partial: list[str] = []  # the current line, not yet ended
        self._after_cr = False  # the last text ended with CR: a LF next is part of it
        self._data: list[str] = []
        self._event = ""
        self._last_id = ""
        self._retry: int | None = None

    def feed(self, chunk: bytes | str) -> list[ServerSentEvent]:
        """Decode one piece of the stream; return the events it completes."""
        text = chunk if isinstance(chunk, str) else self._utf8.decode(chunk)
        return self._events(self._split(self._without_bom(text)))

    def close(self) -> list[ServerSentEvent]:
        """End of the stream: the events still pending (see the module's note)."""
        lines = self._split(self._without_bom(self._utf8.decode(b"", final=True)))
        self._partial = []  # a last line without its line end: the stream was cut
        events = self._events(lines)
        if self._data:
            events.append(self._dispatch())
        return events

    def _without_bom(self, text: str) -> str:
        if self._started or not text:
            return text
        self._started = True
        return text[1:] if text[0] == "\ufeff" else text

    def _split(self, text: str) -> list[str]:
        """The lines that ``text`` ends (CRLF, LF or CR); the rest waits for more."""
        if self._after_cr and text.startswith("\n"):
            text, self._after_cr = text[1:], False  # the LF of a CRLF split between two reads
        if not text:
            return []
        self._after_cr = text.endswith("\r")
        if "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        lines = text.split("\n")
        if len(lines) == 1:
            self._partial.append(text)
            return []
        if self._partial:
            lines[0] = "".join(self._partial) + lines[0]
            self._partial = []
        rest = lines.pop()
        if rest:
            self._partial.append(rest)
        return lines

    def _events(self, lines: list[str]) -> list[ServerSentEvent]:
        events = []
        for line in lines:
            if not line:
                if self._data:
                    events.append(self._dispatch())
                self._event = ""
            elif line.startswith("data:"):  # the usual line, read without ``_field``
                self._data.append(line[6:] if line.startswith(" ", 5) else line[5:])
            elif not line.startswith(":"):
                self._field(line)
        return events

    def _field(self, line: str) -> None:
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._last_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            if len(value) <= _MAX_RETRY_DIGITS:
                self._retry = int(value)

    def _dispatch(self) -> ServerSentEvent:
        event = ServerSentEvent("\n".join(self._data), self._event or "message", self._last_id,
                                self._retry)
        self._data, self._event = [], ""
        return event


def iter_sse_events(chunks: Iterable[bytes | str]) -> Iterator[ServerSentEvent]:
    """The events of a stream given as pieces of bytes (or of text already decoded)."""
    decoder = SSEDecoder()
    for chunk in chunks:
        yield from decoder.feed(chunk)
    yield from decoder.close()


def iter_sse_data(chunks: Iterable[bytes | str]) -> Iterator[str]:
    """The ``data`` of each event of a stream given as pieces of bytes or text."""
    for event in iter_sse_events(chunks):
        yield event.data
