"""Cassettes that cannot be replayed: malformed JSON, the wrong shape, binary. Each is a
``CassetteError`` naming the file and the line, never a raw ``JSONDecodeError``,
``KeyError`` or ``UnicodeDecodeError``."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

import openrouter_nb as orn
from openrouter_nb.api.cassette import load_cassette
from openrouter_nb.api.errors import CassetteError
from openrouter_nb.session import Session


@pytest.fixture(scope="module")
def exchange(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One good cassette line, recorded from the sandbox."""
    folder = tmp_path_factory.mktemp("recorded")
    session = Session(sandbox=True, home=folder, record=folder / "good.jsonl", retries=0)
    session.ask("What is a token?")
    session.close()
    return (folder / "good.jsonl").read_text().splitlines()[0]


def with_response(exchange: str, **changes: object) -> str:
    entry = json.loads(exchange)
    entry["response"].update(changes)
    return json.dumps(entry)


def cassette(folder: Path, *lines: str) -> Path:
    path = folder / "lesson.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


BAD_LINES = {
    "truncated": ('{"request": ', "not valid JSON (Expecting value at column 13)"),
    "trailing comma": ('{"request": 1,}', "not valid JSON (Expecting property name enclosed "
                                          "in double quotes at column 15)"),
    "python repr": ("{'request': {}}", "not valid JSON (Expecting property name enclosed in "
                                       "double quotes at column 2)"),
    "an array": ("[1, 2]", "holds an array, not an exchange object"),
    "a string": ('"hello"', "holds a string, not an exchange object"),
    "no request": ('{"response": {"status": 200, "headers": {}, "body": ""}}',
                   'no "request" object'),
    "request as text": ('{"request": "POST /chat/completions", "response": {}}',
                        '"request" is not an object'),
    "no path": ('{"request": {"method": "POST"}, "response": {}}',
                'the request needs a "method" and a "path", both strings'),
    "no response": ('{"request": {"method": "POST", "path": "/chat/completions"}}',
                    'no "response" object'),
}


@pytest.mark.parametrize("name", list(BAD_LINES))
def test_a_bad_line_is_named_by_file_and_line(tmp_path: Path, exchange: str, name: str) -> None:
    line, problem = BAD_LINES[name]
    path = cassette(tmp_path, exchange, "", line, exchange)
    with pytest.raises(CassetteError) as caught:
        Session(replay=path, home=tmp_path)
    error = caught.value
    assert isinstance(error, orn.OpenRouterError) and error.path == path and error.line == 3
    assert str(error).startswith(f"The cassette {path}, line 3: {problem}. ")
    assert "record the cassette again" in str(error)


@pytest.mark.parametrize(("changes", "problem"), [
    ({"status": "200"}, 'the response "status" must be an HTTP status number'),
    ({"status": True}, 'the response "status" must be an HTTP status number'),
    ({"status": 9000}, 'the response "status" must be an HTTP status number'),
    ({"headers": [["content-type", "application/json"]]},
     'the response "headers" must be an object of strings'),
    ({"body": {"choices": []}}, 'the response "body" must be a string'),
])
def test_a_response_of_the_wrong_shape_is_named(tmp_path: Path, exchange: str,
                                                changes: dict[str, object], problem: str) -> None:
    path = cassette(tmp_path, with_response(exchange, **changes))
    with pytest.raises(CassetteError, match=f"line 1: {problem}") as caught:
        load_cassette(path)
    assert caught.value.line == 1 and str(path) in str(caught.value)


def test_a_binary_file_is_named_with_its_line(tmp_path: Path, exchange: str) -> None:
    path = tmp_path / "lesson.jsonl"
    path.write_bytes(exchange.encode() + b"\n" + gzip.compress(b"not text at all" * 40))
    with pytest.raises(CassetteError) as caught:
        Session(replay=path, home=tmp_path)
    assert caught.value.line == 2
    assert str(caught.value).startswith(f"The cassette {path} is not text: line 2 holds bytes "
                                        "that are not UTF-8")


def test_a_pretty_printed_cassette_points_at_its_first_line(tmp_path: Path,
                                                            exchange: str) -> None:
    path = tmp_path / "lesson.jsonl"
    path.write_text(json.dumps([json.loads(exchange)], indent=2))
    with pytest.raises(CassetteError, match=r"line 1: holds an array|line 1: not valid JSON"):
        load_cassette(path)


def test_a_folder_is_no_cassette(tmp_path: Path) -> None:
    (tmp_path / "lesson.jsonl").mkdir()
    with pytest.raises(CassetteError, match=r"Cannot read the cassette .*lesson\.jsonl"):
        load_cassette(tmp_path / "lesson.jsonl")


def test_good_lines_replay_with_crlf_and_a_raw_line_separator(tmp_path: Path,
                                                              exchange: str) -> None:
    """JSON Lines end at LF: CRLF is fine, and U+2028 inside a string is not a line end."""
    entry = json.loads(exchange)
    entry["response"]["body"] = entry["response"]["body"].replace(
        '"content":"', '"content":"first\u2028second ', 1)
    line = json.dumps(entry, ensure_ascii=False)
    assert "\u2028" in line
    path = tmp_path / "lesson.jsonl"
    path.write_bytes((line + "\r\n\r\n").encode("utf-8"))
    assert len(load_cassette(path)) == 1
    answer = Session(replay=path, home=tmp_path).ask("What is a token?")
    assert answer.text.startswith("first\u2028second ")
