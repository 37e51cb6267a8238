"""Server-sent events, decoded the way the SSE spec says and OpenRouter needs.

OpenRouter streams ``data: <json>`` frames separated by blank lines, ends with
``data: [DONE]`` and sends keep-alive comments (``: OPENROUTER PROCESSING``) that naive
parsers feed to ``json.loads``. Comments are skipped here; ``[DONE]`` is reported as a
sentinel so the caller can tell a finished stream from a truncated one.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

DONE = "[DONE]"


def iter_sse_data(lines: Iterable[str]) -> Iterator[str]:
    """Yield the ``data`` payload of each event in ``lines`` (one line per item, no newline).

    Comment lines (starting with ``:``) and fields other than ``data`` are ignored.
    Multi-line ``data`` fields are joined with ``\\n`` as the spec requires. A final event
    without its terminating blank line is still yielded (the stream may be cut short).
    """
    buffer: list[str] = []
    for raw_line in lines:
        line = raw_line.rstrip("\r\n")
        if not line:
            if buffer:
                yield "\n".join(buffer)
                buffer = []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        if name != "data":
            continue
        buffer.append(value[1:] if value.startswith(" ") else value)
    if buffer:
        yield "\n".join(buffer)
