"""Features used together: conversations, tools, attachments, the cache, async, replay."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from openrouter_nb import BudgetExceeded, SensitiveInputBlocked
from openrouter_nb.sandbox import SandboxServer
from openrouter_nb.session import Session

from .test_attachments import pdf, png


def calculate(expression: str) -> float:
    """Calculate an arithmetic expression."""
    numbers = [float(n) for n in expression.replace(" ", "").split("*")]
    result = 1.0
    for number in numbers:
        result *= number
    return result


def test_a_cached_tool_task_runs_its_tools_instead_of_answering_nothing(session: Session) -> None:
    first = session.ask("calculate 2*3", model="openai/gpt-oss-20b:free", tools=[calculate],
                        cache=True)
    again = session.ask("calculate 2*3", model="openai/gpt-oss-20b:free", tools=[calculate],
                        cache=True)
    assert again.text == first.text and "6" in again.text
    assert again.steps is not None and again.steps[0].tool_calls


def test_a_cached_turn_keeps_the_pdf_parse_for_the_next_turn(session: Session,
                                                                tmp_path: Path) -> None:
    pytest.importorskip("pypdf")
    path = tmp_path / "notes.pdf"
    path.write_bytes(pdf("Quarterly rainfall report", "Second page"))
    model = "google/gemini-2.0-flash-exp:free"
    sent = session.chat(model=model, name="first", cache=True)
    sent.ask("Summarise", attachments=[path])
    cached = session.chat(model=model, name="again", cache=True)
    answer = cached.ask("Summarise", attachments=[path])
    assert answer.extra.get("cached_at") is not None
    assert cached.messages[-1].to_wire() == sent.messages[-1].to_wire()
    assert "annotations" in cached.messages[-1].to_wire()


def test_a_batch_row_whose_image_changed_is_sent_again(session: Session, tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    red, green = tmp_path / "red.png", tmp_path / "green.png"
    red.write_bytes(png(2, 2, (255, 0, 0)))
    green.write_bytes(png(2, 2, (0, 255, 0)))
    model = "google/gemini-2.0-flash-exp:free"
    first = session.batch(pd.DataFrame({"name": ["a"], "img": [str(red)]}), "Describe {name}",
                          model=model, attachments="img")
    again = session.batch(pd.DataFrame({"name": ["a"], "img": [str(green)]}), "Describe {name}",
                          model=model, attachments="img")
    assert "#ff0000" in first["answer"][0] and "#00ff00" in again["answer"][0]
    assert len(session.ledger.dataframe()) == 2


def test_a_tool_turn_stopped_at_max_steps_resumes_with_its_tool_results(session: Session) -> None:
    chat = session.chat(model="openai/gpt-oss-20b:free", name="agent")
    chat.ask("calculate 2*3", tools=[calculate], max_steps=1)
    chat.ask("And in words?")
    resumed = Session(home=session.ledger.path.parent, sandbox=True).chat(resume="agent")
    assert [m.to_wire() for m in resumed.messages] == [m.to_wire() for m in chat.messages]
    assert [m.role for m in resumed.messages] == ["user", "assistant", "tool", "user", "assistant"]


def test_a_tool_turn_that_failed_midway_is_not_resumed_as_a_turn(session: Session) -> None:
    chat = session.chat(model="openai/gpt-oss-20b:free", name="spent")
    session.budget = 1
    with pytest.raises(BudgetExceeded):
        chat.ask("calculate 2*3", tools=[calculate], go_ahead=True)
    assert chat.turns == 0
    with pytest.raises(KeyError, match="No conversation named 'spent'"):
        Session(home=session.ledger.path.parent, sandbox=True).chat(resume="spent")


def test_a_tool_step_is_not_checked_against_the_schema(session: Session) -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    answer = session.ask("calculate 2*3", model="openai/gpt-oss-20b:free", tools=[calculate],
                         schema=schema, retries=1)
    assert answer.steps is not None and len(answer.steps) == 2
    assert answer.steps[0].attempts == 1 and answer.steps[0].tool_calls  # not re-asked
    assert answer.data is not None and isinstance(answer.data["a"], int)
    rows = session.ledger.dataframe(columns="all")
    assert list(rows["step"]).count(1) == 1 and set(rows["step"]) == {1, 2}


def test_chat_with_compare_is_refused_not_dropped(ip: InteractiveShell, session: Session) -> None:
    with pytest.raises(UsageError, match="--chat and --compare do not go together"):
        ip.run_cell_magic("openrouter", "--chat tutor --compare openai/gpt-oss-20b:free,"
                          "google/gemini-2.0-flash-exp:free", "What is 2+2?")
    assert len(session.ledger.dataframe()) == 0


def test_a_batch_row_whose_tool_task_stopped_midway_is_sent_again(session: Session) -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"q": ["2*3"]})
    session.budget = 1
    stopped = session.batch(frame, "calculate {q}", model="openai/gpt-oss-20b:free",
                            tools=[calculate], go_ahead=True, progress=None)
    assert list(stopped["answer_status"]) == ["budget"]
    session.budget = None
    again = session.batch(frame, "calculate {q}", model="openai/gpt-oss-20b:free",
                          tools=[calculate], progress=None)
    assert list(again["answer_status"]) == ["ok"] and "6" in again["answer"][0]


def test_an_interrupt_while_a_tool_runs_is_an_interrupted_row(session: Session) -> None:
    def calculate(expression: str) -> float:
        """Calculate an arithmetic expression."""
        raise KeyboardInterrupt

    chat = session.chat(model="openai/gpt-oss-20b:free", name="stopped")
    with pytest.raises(KeyboardInterrupt):
        chat.ask("calculate 2*3", tools=[calculate])
    rows = session.ledger.dataframe(columns="all")
    assert list(rows["status"]) == ["interrupted"] and list(rows["error_kind"]) == ["interrupted"]
    assert chat.turns == 0 and session.quota_state().day_used == 1  # it was sent


def test_a_tool_result_holding_the_key_is_not_kept_in_the_ledger(
        make_session: Callable[..., Session], server: SandboxServer) -> None:
    loop = make_session(loopback=server)
    key = loop.settings.api_key or ""

    def lookup_setting(name: str) -> str:
        """Lookup a setting by name."""
        return f"the setting {name} is {key}"

    with pytest.raises(SensitiveInputBlocked) as refused:  # step 2 would send it back
        loop.ask('lookup setting "token"', model="openai/gpt-oss-20b:free",
                 tools=[lookup_setting])
    shown = refused.value.steps[0].tool_calls[0].line()  # type: ignore[attr-defined]
    assert "the setting token is sk-or-" in shown and key[:20] not in shown
    rows = loop.ledger.dataframe(columns="all")
    assert len(key) > 20 and not any(key in str(v) for v in rows.to_numpy().ravel())
    assert "sk-or-" in rows["tool_calls"].dropna().iloc[0]


def test_a_fork_resumes_with_the_history_it_was_forked_from(session: Session) -> None:
    chat = session.chat(model="openai/gpt-oss-20b:free", name="trunk", system="Be brief.")
    chat.ask("calculate 2*3", tools=[calculate])
    chat.ask("And in words?")
    branch = chat.fork("branch")
    branch.ask("calculate 5*5", tools=[calculate])
    resumed = Session(home=session.ledger.path.parent, sandbox=True).chat(resume="branch")
    assert [m.to_wire() for m in resumed.messages] == [m.to_wire() for m in branch.messages]
    assert resumed.turns == branch.turns == 3
