"""Features used together: conversations, tools, attachments, the cache, async, replay."""

from __future__ import annotations

from openrouter_nb.session import Session


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
