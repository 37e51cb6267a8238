"""Record against the sandbox server, replay with no server: same answers, no key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import openrouter_nb as orn
from openrouter_nb.api.errors import ReplayMiss
from openrouter_nb.sandbox import Sandbox, SandboxServer, sandbox_key
from openrouter_nb.session import Session

MODEL = "google/gemma-3-27b-it:free"
SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}


def record(cassette: Path, home: Path) -> tuple[str, list[orn.Answer]]:
    key = sandbox_key("instructor")
    with SandboxServer(Sandbox(seed=3)) as server:
        session = Session(api_key=key, base_url=server.base_url, sandbox=False, home=home,
                          record=cassette, retries=0)
        answers = [
            session.ask("What is a token?"),                        # the free router
            session.ask("Stream a haiku", MODEL, stream=True),       # SSE
            session.ask("Give me a number", MODEL, schema=SCHEMA),   # structured
        ]
        with pytest.raises(orn.UpstreamRateLimit):
            session.ask("fail once", MODEL, headers={"X-Sandbox-Fault": "upstream_429"})
        session.close()
    return key, answers


def test_replay_is_byte_identical_without_a_server(tmp_path: Path) -> None:
    cassette = tmp_path / "lesson.jsonl"
    key, recorded = record(cassette, tmp_path / "a")
    text = cassette.read_text()
    assert key not in text and "Bearer" not in text and "sk-or-v1-" not in text
    assert len(text.splitlines()) == 4 + 1  # 4 chats (+ the catalog lookup for the schema)

    replay = Session(replay=cassette, home=tmp_path / "b", retries=0)  # no key, no server
    again = [replay.ask("What is a token?"),
             replay.ask("Stream a haiku", MODEL, stream=True),
             replay.ask("Give me a number", MODEL, schema=SCHEMA)]
    for before, after in zip(recorded, again, strict=True):
        assert after.text == before.text and after.model == before.model
        assert after.usage == before.usage
    assert again[2].data == recorded[2].data
    assert all(a.mode == "replay" for a in again)
    assert "replay: recorded answer, simulated" in again[0].footer()
    with pytest.raises(orn.UpstreamRateLimit):  # errors replay too
        replay.ask("fail once", MODEL, headers={"X-Sandbox-Fault": "upstream_429"})
    assert {r["mode"] for r in replay.ledger.rows()} == {"replay"}


def test_missing_exchange_is_a_clear_error(tmp_path: Path) -> None:
    cassette = tmp_path / "lesson.jsonl"
    record(cassette, tmp_path / "a")
    replay = Session(replay=cassette, home=tmp_path / "b", retries=0)
    with pytest.raises(ReplayMiss, match="holds no answer for POST /chat/completions") as info:
        replay.ask("A question nobody recorded")
    assert "A question nobody recorded" in info.value.message
    assert replay.ledger.rows()[-1]["error_kind"] == "replay_miss"


def test_fallback_to_the_sandbox_is_labelled(tmp_path: Path) -> None:
    cassette = tmp_path / "lesson.jsonl"
    record(cassette, tmp_path / "a")
    replay = Session(replay=cassette, replay_fallback=True, sandbox=True, home=tmp_path / "b")
    answer = replay.ask("A question nobody recorded")
    assert answer.text.startswith("[sandbox]") and answer.sandbox


def test_env_variable_selects_replay(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cassette = tmp_path / "lesson.jsonl"
    record(cassette, tmp_path / "a")
    monkeypatch.setenv("OPENROUTER_NB_REPLAY", str(cassette))
    assert Session(home=tmp_path / "b").mode == "replay"
    lines = [json.loads(line) for line in cassette.read_text().splitlines()]
    assert all(set(entry["request"]) == {"method", "path", "body"} for entry in lines)


def test_missing_cassette_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="Record one with %openrouter record"):
        Session(replay=tmp_path / "nope.jsonl", home=tmp_path)
