"""Conversations: memory across turns and cells, the ledger rows, resume in a new process,
the history cap and the context check."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

import openrouter_nb as orn
from openrouter_nb.session import Session

PLAIN = "meta-llama/llama-3.3-70b-instruct:free"
SMALL = "moonshotai/kimi-k2:free"  # 32,768 tokens of context in the sandbox catalog


@pytest.fixture(autouse=True)
def _fresh_registry() -> None:
    """Each test starts in a kernel with no conversations."""
    from openrouter_nb import conversation

    conversation._registry.clear()
    conversation._last.clear()


def _chat_bodies(session: Session) -> list[dict[str, Any]]:
    return [r.json for r in session.sandbox.requests if r.path.endswith("/chat/completions")]


def test_each_turn_resends_the_history_and_the_model_remembers(
        make_session: Callable[..., Session]) -> None:
    session = make_session()
    chat = session.chat(PLAIN, system="Be brief.", name="memory")
    first = chat.ask("What is an API rate limit?")
    second = chat.ask("Why does it exist?")
    assert 'earlier you asked: "What is an API rate limit?"' in second.text
    assert "turn 2" in second.text
    bodies = _chat_bodies(session)
    assert [m["role"] for m in bodies[1]["messages"]] == ["system", "user", "assistant", "user"]
    assert bodies[1]["messages"][2]["content"] == first.text
    assert second.usage["prompt_tokens"] > first.usage["prompt_tokens"]
    assert second.footer().startswith(f"turn 2 · {second.usage['prompt_tokens']:,} prompt tokens")
    rows = session.ledger.rows()
    assert [(r["conversation"], r["turn"]) for r in rows] == [("memory", 1), ("memory", 2)]
    assert len({r["conversation_id"] for r in rows}) == 1
    assert chat.turns == 2 and [m.role for m in chat.messages] == [
        "system", "user", "assistant", "user", "assistant"]


def test_every_attempt_of_a_turn_is_a_row(make_session: Callable[..., Session]) -> None:
    session = make_session(retries=1)
    chat = session.chat(PLAIN, name="flaky")
    chat.ask("hello")
    session.sandbox.queue_fault("provider_502")
    chat.ask("again")
    rows = session.ledger.rows()
    assert [(r["turn"], r["attempt"], r["status"]) for r in rows] == [
        (1, 1, "ok"), (2, 1, "error"), (2, 2, "ok")]


def test_history_cap_resends_the_last_turns_and_says_so(
        make_session: Callable[..., Session]) -> None:
    session = make_session()
    chat = session.chat(PLAIN, history=1)
    for question in ("one?", "two?", "three?"):
        answer = chat.ask(question)
    bodies = _chat_bodies(session)
    assert [m["content"] for m in bodies[2]["messages"] if m["role"] == "user"] == [
        "two?", "three?"]
    assert "1 earlier turn not resent (history=1)" in answer.footer()
    assert chat.turns == 3  # the conversation itself keeps everything


def test_a_conversation_that_will_not_fit_is_refused_before_sending(
        make_session: Callable[..., Session]) -> None:
    session = make_session()
    chat = session.chat(SMALL)
    chat.ask("Summarise: " + "river " * 12_000)  # ~18k tokens: fits 32,768 with 4,096 out
    before = len(_chat_bodies(session))
    with pytest.raises(orn.BadRequestError, match="does not fit .*32,768 tokens") as info:
        chat.ask("And this: " + "delta " * 12_000)
    assert "history=N" in info.value.message
    assert len(_chat_bodies(session)) == before
    assert session.ledger.rows()[-1]["error_kind"] == "bad_request"
    assert chat.turns == 1  # the refused turn is not part of the history


def test_fork_and_reset(make_session: Callable[..., Session]) -> None:
    session = make_session()
    chat = session.chat(PLAIN, name="main")
    chat.ask("first question")
    branch = chat.fork()
    branch.ask("branch question")
    assert chat.turns == 1 and branch.turns == 2 and branch.name == "main-fork"
    chat.reset()
    assert chat.turns == 0 and "turn 1" in chat.ask("fresh start").footer()


def test_the_model_change_between_turns_is_said(make_session: Callable[..., Session]) -> None:
    session = make_session()
    chat = session.chat("openrouter/free")
    served = [chat.ask(f"question {n}").model for n in range(6)]
    changes = [a for a in chat.answers if a.model_changed_from]
    assert len(set(served)) > 1 and changes
    assert f"model changed: {changes[0].model_changed_from} → {changes[0].model}" in (
        changes[0].footer())


def test_resume_in_a_new_process_from_the_ledger(tmp_path: Path) -> None:
    env = {**os.environ, "OPENROUTER_NB_HOME": str(tmp_path), "OPENROUTER_NB_SANDBOX": "1"}
    first = ("import openrouter_nb as orn\n"
             f"c = orn.chat({PLAIN!r}, name='lesson', system='Be brief.')\n"
             "c.ask('What is an API rate limit?'); c.ask('Why does it exist?')\n")
    subprocess.run([sys.executable, "-c", first], env=env, check=True, timeout=120)
    second = ("import json, openrouter_nb as orn\n"
              "c = orn.chat(resume='lesson')\n"
              "a = c.ask('Give an example.')\n"
              "print(json.dumps({'turn': a.turn, 'text': a.text, 'model': c.model,\n"
              "  'roles': [m.role for m in c.messages], 'system': c.system}))\n")
    done = subprocess.run([sys.executable, "-c", second], env=env, check=True, timeout=120,
                          capture_output=True, text=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["turn"] == 3 and result["model"] == PLAIN and result["system"] == "Be brief."
    assert 'earlier you asked: "Why does it exist?"' in result["text"]
    assert result["roles"] == ["system"] + ["user", "assistant"] * 3


def test_resume_of_an_unknown_name_says_what_to_do(session: Session) -> None:
    with pytest.raises(KeyError, match="orn.chat\\(name='nobody'\\)"):
        orn.chat(resume="nobody")


# -- in the magic ------------------------------------------------------------------------------

def _cell(ip: InteractiveShell, line: str, body: str) -> Any:
    with capture_output() as captured:
        ip.run_cell_magic("openrouter", line, body)
    return captured


def test_magic_chat_continues_across_cells(ip: InteractiveShell, session: Session) -> None:
    _cell(ip, f"--chat tutor -m {PLAIN} --out a1", "What is an API rate limit?")
    _cell(ip, "--chat --out a2", "Why does it exist?")  # bare --chat: the last conversation
    a1, a2 = ip.user_ns["a1"], ip.user_ns["a2"]
    assert (a1.turn, a2.turn) == (1, 2) and a2.model == PLAIN
    assert 'earlier you asked: "What is an API rate limit?"' in a2.text
    with capture_output() as captured:
        frame = ip.run_line_magic("openrouter", "chats")
    assert list(frame["conversation"]) == ["tutor"] and list(frame["turns"]) == [2]
    ip.run_line_magic("openrouter", "reset tutor")
    _cell(ip, "--chat tutor --out a3", "Start again.")
    assert ip.user_ns["a3"].turn == 1
    assert captured is not None


def test_magic_chat_resumes_from_the_ledger_after_a_restart(
        ip: InteractiveShell, session: Session) -> None:
    from openrouter_nb import conversation

    _cell(ip, f"--chat course -m {PLAIN}", "What is a token?")
    conversation._registry.clear()  # what a kernel restart forgets
    conversation._last.clear()
    _cell(ip, "--chat course --out again", "And a context window?")
    assert ip.user_ns["again"].turn == 2
    assert 'earlier you asked: "What is a token?"' in ip.user_ns["again"].text


def test_magic_reasoning_flag_reaches_the_body(ip: InteractiveShell, session: Session) -> None:
    _cell(ip, "-m deepseek/deepseek-r1-0528:free --reasoning low --out r", "Why is the sky blue?")
    assert _chat_bodies(session)[-1]["reasoning"] == {"effort": "low"}
    assert ip.user_ns["r"].reasoning
