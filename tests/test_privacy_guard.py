"""The sensitive-input guard inside Session.ask: blocked before sending, logged without text."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import openrouter_nb as orn
from openrouter_nb.session import Session

SECRET = "sk-or-v1-" + "cd" * 32  # built at run time, never a literal key


def chat_requests(session: Session) -> int:
    return sum(1 for r in session.sandbox.requests if r.path.endswith("/chat/completions"))


def test_blocked_before_sending_and_logged_without_text(make_session: Callable[..., Session],
                                                        tmp_path: Path) -> None:
    session = make_session()
    prompt = f"Why does {SECRET} fail? Mail me at ada@example.org"
    with pytest.raises(orn.SensitiveInputBlocked) as info:
        session.ask(prompt)
    assert info.value.kind == "blocked_sensitive"
    assert "OpenRouter API key" in info.value.message and "e-mail" in info.value.message
    assert "--allow-sensitive" in info.value.message and SECRET not in info.value.message
    assert chat_requests(session) == 0
    (row,) = session.ledger.rows()
    assert (row["error_kind"], row["prompt"]) == ("blocked_sensitive", None)
    data = b"".join(p.read_bytes() for p in tmp_path.glob("ledger.sqlite*"))
    assert SECRET.encode() not in data and b"ada@example.org" not in data


def test_system_prompt_is_checked_too(make_session: Callable[..., Session]) -> None:
    session = make_session()
    with pytest.raises(orn.SensitiveInputBlocked):
        session.ask("hello", system="Card on file: 4242 4242 4242 4242")


def test_allow_sensitive_sends_it(make_session: Callable[..., Session]) -> None:
    session = make_session()
    answer = session.ask("Contact: ada@example.org", allow_sensitive=True)
    assert answer.text and chat_requests(session) == 1


def test_data_policy_404_from_preferences_is_explained(make_session: Callable[..., Session]) -> None:
    session = make_session()
    # gemma's only sandbox provider may train on prompts: data_collection=deny leaves none.
    with pytest.raises(orn.ModelUnavailableError, match="data_collection") as info:
        session.ask("hello", "google/gemma-3-27b-it:free", provider={"data_collection": "deny"})
    chats = [r for r in session.sandbox.requests if r.path.endswith("/chat/completions")]
    assert chats[-1].json["provider"] == {"data_collection": "deny"}
    assert "data policy" in info.value.message and "Free alternatives" not in info.value.message
