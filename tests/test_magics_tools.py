"""``%%openrouter --tools f,g --max-steps N``: a tool task from a cell, its trace under the answer."""

from __future__ import annotations

from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from openrouter_nb.session import Session


def _ask(ip: InteractiveShell, body: str, line: str) -> Any:
    with capture_output() as cap:
        ip.run_cell_magic("openrouter", line, body)
    return cap


def _text(cap: Any) -> str:
    return "\n".join(str(v) for out in cap.outputs for v in out.data.values())


def _tools(ip: InteractiveShell) -> None:
    ip.run_cell("def multiply(a: int, b: int) -> int:\n"
                "    '''Multiply two whole numbers.'''\n"
                "    return a * b\n"
                "def capital(country: str) -> str:\n"
                "    '''Look up the capital city of a country.'''\n"
                "    return {'Norway': 'Oslo'}.get(country, 'unknown')\n")


def test_a_cell_runs_a_tool_task_and_shows_its_trace(ip: InteractiveShell,
                                                     session: Session) -> None:
    _tools(ip)
    cap = _ask(ip, "Multiply 6 by 7", "-m openai/gpt-oss-20b:free --tools multiply,capital "
                                      "--max-steps 3 --no-stream --out task")
    shown = cap.outputs[-1].data
    assert "multiply({&quot;a&quot;: 6, &quot;b&quot;: 7}) → 42" in shown["text/html"]
    assert "step 1 · openai/gpt-oss-20b:free" in shown["text/plain"]
    assert "multiply({\"a\": 6, \"b\": 7}) → 42" in shown["text/plain"]
    assert "2 requests for this task · 4% of today's free quota" in shown["text/plain"]
    task = ip.user_ns["task"]
    assert [len(s.tool_calls) for s in task.steps] == [1, 0]
    sent = [r.json for r in session.sandbox.requests if r.path.endswith("/chat/completions")]
    assert len(sent) == 2 and sent[0]["tools"][0]["function"]["description"] == \
        "Multiply two whole numbers."


def test_max_steps_and_a_refusal_from_a_cell(ip: InteractiveShell, session: Session) -> None:
    _tools(ip)
    session.budget = 2
    cap = _ask(ip, "Multiply 2 by 3", "-m openai/gpt-oss-20b:free --tools multiply")
    assert "may need up to 5 requests" in _text(cap) and "nothing was sent" in _text(cap)
    assert session.sandbox.requests == []
    cap = _ask(ip, "Multiply 2 by 3", "-m openai/gpt-oss-20b:free --tools multiply "
                                      "--max-steps 2")
    assert "2 requests for this task" in _text(cap)


def test_bad_tool_flags_are_usage_errors(ip: InteractiveShell, session: Session) -> None:
    with pytest.raises(UsageError, match="no function 'nope' in the notebook"):
        ip.run_cell_magic("openrouter", "--tools nope", "hi")
    with pytest.raises(UsageError, match="give --tools too"):
        ip.run_cell_magic("openrouter", "--max-steps 3", "hi")
    assert session.sandbox.requests == []
