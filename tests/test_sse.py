"""The event-stream decoder against the WHATWG rules, and against itself fed in pieces.

Examples come from the spec's own ("Parsing an event stream", "Interpreting an event
stream"); the properties (hypothesis) feed the same bytes in random pieces, cut inside
multi-byte characters and between CR and LF, and expect the events of one-shot decoding.
"""

from __future__ import annotations

import json

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openrouter_nb.api.client import OpenRouterClient
from openrouter_nb.api.sse import ServerSentEvent, SSEDecoder, iter_sse_data, iter_sse_events


def _events(raw: bytes) -> list[ServerSentEvent]:
    return list(iter_sse_events([raw]))


def _data(raw: bytes) -> list[str]:
    return list(iter_sse_data([raw]))


# -- the spec's examples ---------------------------------------------------------------------
def test_data_lines_join_with_newline() -> None:
    assert _data(b"data: YHOO\ndata: +2\ndata: 10\n\n") == ["YHOO\n+2\n10"]


def test_comments_ids_and_one_space_removed() -> None:
    raw = b": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n\n"
    assert _events(raw) == [ServerSentEvent("first event", id="1"),
                            ServerSentEvent("second event", id=""),
                            ServerSentEvent(" third event", id="")]


def test_field_without_colon_has_an_empty_value() -> None:
    assert _data(b"data\n\ndata\ndata\n\ndata:") == ["", "\n"]  # the last line was cut


def test_space_after_colon_is_optional() -> None:
    assert _data(b"data:test\n\ndata: test\n\n") == ["test", "test"]


def test_event_type_retry_and_unknown_fields() -> None:
    raw = (b"event: add\nretry: 3000\nfoo: bar\ndata: 1\n\n"
           b"retry: 12x\nid: a\x00b\ndata: 2\n\nevent: only-a-type\n\n")
    assert _events(raw) == [ServerSentEvent("1", event="add", retry=3000),
                            ServerSentEvent("2", retry=3000)]


def test_huge_retry_value_is_ignored_not_parsed() -> None:
    assert _events(b"retry: " + b"9" * 5000 + b"\ndata: x\n\n") == [ServerSentEvent("x")]


# -- line ends, the byte-order mark, encoding ------------------------------------------------
@pytest.mark.parametrize("end", [b"\n", b"\r", b"\r\n"])
def test_lines_end_at_cr_lf_or_crlf(end: bytes) -> None:
    raw = b"data: a" + end + b"data: b" + end + end + b"data: c" + end + end
    assert _data(raw) == ["a\nb", "c"]


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\u0085", "\x0c", "\x0b", "\x1c"])
def test_unicode_line_separators_are_not_line_ends(separator: str) -> None:
    payload = json.dumps({"content": f"one{separator}two"}, ensure_ascii=False)
    assert _data(f"data: {payload}\n\n".encode()) == [payload]


def test_one_leading_byte_order_mark_is_dropped() -> None:
    assert _data(b"\xef\xbb\xbfdata: first\n\n") == ["first"]
    assert _data(b"\xef\xbb\xbf\xef\xbb\xbfdata: x\n\n") == []  # a second one is part of a name
    assert _data(b"data: a\n\n\xef\xbb\xbfdata: b\n\n") == ["a"]  # only at the very start
    decoder = SSEDecoder()
    pieces = [decoder.feed(piece) for piece in (b"\xef", b"\xbb", b"\xbfdata: split\n", b"\n")]
    assert pieces == [[], [], [], [ServerSentEvent("split")]]


def test_a_cr_at_the_end_of_a_piece_pairs_only_with_the_very_next_byte() -> None:
    pieces = [b"data: a\r", b"data: b", b"\n\n", b"data: c\r", b"\n", b"\r\n"]
    assert list(iter_sse_data(pieces)) == ["a\nb", "c"]


def test_invalid_utf8_becomes_replacement_characters() -> None:
    assert _data(b"data: a\xffb\xc3\n\n") == ["a\ufffdb\ufffd"]


def test_last_event_without_blank_line_is_kept_but_a_cut_line_is_not() -> None:
    assert _data(b"data: a\n\ndata: [DONE]\n") == ["a", "[DONE]"]
    assert _data(b"data: a\n\ndata: [DONE]\r") == ["a", "[DONE]"]
    assert _data(b"data: a\n\ndata: [DO") == ["a"]
    assert _data(b"data: a\ndata: b") == ["a"]  # its finished lines still make an event


# -- through the client: the bytes of issue 15 -------------------------------------------------
def _chunk(content: str, finish: str | None = None) -> str:
    return json.dumps({"id": "gen-1", "model": "m/x:free", "provider": "P", "choices": [
        {"index": 0, "delta": {"content": content}, "finish_reason": finish}]},
        ensure_ascii=False)


@pytest.mark.parametrize("prefix", [b"", b"\xef\xbb\xbf"])
def test_raw_line_separators_and_bom_reach_the_answer_whole(prefix: bytes) -> None:
    text = "Line\u2028two\u2029three\u0085four\x0cfive"
    sse = (prefix + f": OPENROUTER PROCESSING\r\n\r\ndata: {_chunk('First words. ')}\r\n\r\n"
           f"data: {_chunk(text, 'stop')}\r\n\r\ndata: [DONE]\r\n\r\n".encode())
    pieces = [sse[i:i + 7] for i in range(0, len(sse), 7)]  # cuts inside characters and CRLFs
    client = OpenRouterClient("sk-or-v1-test", "http://test/api/v1", transport=httpx.MockTransport(
        lambda request: httpx.Response(200, headers={"content-type": "text/event-stream"},
                                       content=iter(pieces))))
    result = client.chat({"model": "m/x:free", "messages": [], "stream": True})
    assert result.text == "First words. " + text and result.finish_reason == "stop"


# -- properties ----------------------------------------------------------------------------------
FRAGMENTS = [b"data:", b"data: ", b"event: e", b"id: 7", b"retry: 15", b":", b" ", b"x", b"{}",
             b"\r", b"\n", b"\r\n", b"\r\r", b"\n\n", b"\xef\xbb\xbf", "é".encode(), "€".encode(),
             "😀".encode(), "\u2028".encode(), "\u0085".encode(), b"\x85", b"\xc3", b"\xf0\x9f",
             b"\xff", b"\x00", b"[DONE]"]

wire_bytes = st.one_of(
    st.lists(st.sampled_from(FRAGMENTS), max_size=60).map(b"".join),
    st.binary(max_size=300),
)


def cut_points(limit: int) -> st.SearchStrategy[list[int]]:
    """Where to cut: anywhere, or every 1 to 8 bytes (so a CR ends a piece, alone)."""
    return st.one_of(st.lists(st.integers(min_value=0, max_value=limit), max_size=40),
                     st.integers(1, 8).map(lambda step: list(range(step, limit, step))))


def _pieces(raw: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(cut, len(raw)) for cut in cuts})
    return [raw[a:b] for a, b in zip([0, *points], [*points, len(raw)], strict=True)]


@settings(max_examples=300, deadline=None)
@given(raw=wire_bytes, cuts=cut_points(400))
def test_any_pieces_decode_like_the_whole(raw: bytes, cuts: list[int]) -> None:
    assert list(iter_sse_events(_pieces(raw, cuts))) == _events(raw)


line_end = st.sampled_from(["\n", "\r", "\r\n"])
field_text = st.text(st.characters(blacklist_characters="\r\n", blacklist_categories=["Cs"]),
                     max_size=12)


@settings(max_examples=300, deadline=None)
@given(events=st.lists(st.lists(field_text, min_size=1, max_size=3), max_size=6),
       ends=st.lists(line_end, min_size=1, max_size=4), bom=st.booleans(),
       cuts=cut_points(600))
def test_written_events_read_back(events: list[list[str]], ends: list[str], bom: bool,
                                  cuts: list[int]) -> None:
    """Events written with any mix of line ends (and a BOM, and comments) read back as
    written, from any pieces."""
    out, n = ["\ufeff" if bom else ""], 0
    for lines in events:
        for line in [": keep-alive", *(f"data: {text}" for text in lines), ""]:
            end = ends[n % len(ends)]
            if not line and end == "\n" and out[-1].endswith("\r"):
                end = "\r\n"  # CR then LF would be one line end: a writer must not do that
            out.append(line + end)
            n += 1
    raw = "".join(out).encode()
    assert list(iter_sse_data(_pieces(raw, cuts))) == ["\n".join(lines) for lines in events]
