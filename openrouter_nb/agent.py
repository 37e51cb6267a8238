"""Tool tasks: a bounded loop of model calls, each one ``pipeline.run`` of a ``Call``.

``run_task`` sends the call with its ``tools``; while the answer asks for tool calls it runs
the requested functions (only the ones the user passed, arguments checked against their
schema, see :mod:`openrouter_nb.tools`), appends the assistant message with its
``tool_calls`` and one ``tool`` message per call (reference §3.3), and asks again, at most
``max_steps`` times. Every model call is an ordinary call down the pipeline, so pacing,
retries (a per-minute 429 waits and continues), the budget and the ledger apply to each step;
each step's row carries ``task_id``, ``step`` and the tools it asked for (name, arguments, a
shortened result) in ``tool_calls``.

Before a multi-step task on a free model the worst case (``max_steps`` requests) is compared
with today's remaining quota and the session budget: a task they cannot cover is refused with
nothing sent, unless ``go_ahead=True``. A failure mid-task (a per-day 429, the budget) keeps
the steps done on the error (``error.steps``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from . import pipeline
from .answer import Answer, Step
from .api.errors import BudgetExceeded, OpenRouterError
from .api.types import ChatResult
from .call import Call, Engine
from .ledger import new_call_id
from .messages import Message, assistant
from .quota import format_countdown, is_free_model
from .tools import Tool, ToolRun

__all__ = ["TaskRefused", "estimate", "run_task"]


class TaskRefused(BudgetExceeded):
    """A tool task whose worst case the quota or budget cannot cover; nothing was sent."""


@dataclass
class _Task:
    """What one task has done so far."""

    call: Call
    tools: dict[str, Tool]
    task_id: str = field(default_factory=new_call_id)
    steps: list[Step] = field(default_factory=list)
    added: list[Message] = field(default_factory=list)  # after the question: calls, results
    requests: int = 0
    usage: dict[str, Any] = field(default_factory=dict)


def run_task(engine: Engine, call: Call) -> Answer:
    """Run ``call`` (whose options hold ``tools``) as a bounded tool loop; the final Answer
    has ``steps`` and counts every request of the task."""
    options = call.options
    task = _Task(call, {tool.name: tool for tool in options.tools or ()})
    _check_quota(engine, call, task.task_id)
    for number in range(1, options.max_steps + 1):
        runs: list[ToolRun] = []
        step_call = _step_call(task, number, runs)
        try:
            answer = pipeline.run(engine, step_call)
        except OpenRouterError as error:
            task.requests += error.attempts
            _keep_steps(error, task)
            raise
        task.requests += answer.attempts
        _add_usage(task.usage, answer.usage)
        task.steps.append(Step(number, answer.model, answer.latency_s, tuple(runs), answer.text,
                               answer.attempts, answer.call_id))
        if not runs:
            return _final(engine, task, answer)
        task.added.append(assistant(answer.message or {"content": answer.text}))
        task.added.extend(Message.from_wire(_reply(run)) for run in runs)
    return _final(engine, task, answer, stopped=True)


def _step_call(task: _Task, number: int, runs: list[ToolRun]) -> Call:
    call = task.call
    turn_added = (*call.turn_added, *task.added) if call.turn_added else ()

    def run_tools(result: ChatResult) -> tuple[str | None, list[dict[str, Any]] | None]:
        for tool_call in result.tool_calls:
            run = _run_one(task.tools, tool_call.name or "", tool_call.arguments, tool_call.id)
            runs.append(run)
            call.event("tool", step=number, run=run)
        if not runs:
            return None, []  # the answer in words: the turn ends here
        record = json.dumps([run.record() for run in runs], ensure_ascii=False)
        if number < call.options.max_steps:
            return record, None  # the next step completes the turn (or the turn fails)
        return record, [_reply(run) for run in runs]  # stopped at max_steps with these results

    call.event("step", step=number, max_steps=call.options.max_steps)
    return replace(call, messages=(*call.messages, *task.added),
                   call_id=call.call_id if number == 1 else new_call_id(),
                   task_id=task.task_id, step=number, turn_added=turn_added,
                   run_tools=run_tools)


def _reply(run: ToolRun) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": run.id or "", "content": run.content}


def _run_one(tools: dict[str, Tool], name: str, arguments: str, call_id: str | None) -> ToolRun:
    found = tools.get(name)
    if found is None:
        known = ", ".join(sorted(tools)) or "none"
        try:
            shown: Any = json.loads(arguments)
        except ValueError:
            shown = arguments
        return ToolRun(name or "?", shown, error=f"there is no tool named {name!r}; the tools "
                       f"are: {known}.", id=call_id)
    return replace(found.run(arguments), id=call_id)


def _final(engine: Engine, task: _Task, answer: Answer, *, stopped: bool = False) -> Answer:
    options = task.call.options
    notes = list(answer.notes)
    if stopped:
        notes.append(f"stopped at max_steps={options.max_steps}: the model still wanted tools "
                     "(raise max_steps, or simplify the task)")
    answer.steps, answer.task_id = tuple(task.steps), task.task_id
    answer.task_messages = tuple(task.added)  # stopped: ends with the last tool results
    answer.attempts, answer.notes = task.requests, tuple(notes)
    answer.latency_s = sum(step.latency_s for step in task.steps)
    answer.usage = {**answer.usage, **task.usage}
    if answer.day_remaining is not None:
        answer.day_limit = engine.quota.state().day_limit
    return answer


def _add_usage(total: dict[str, Any], usage: dict[str, Any]) -> None:
    for key in ("prompt_tokens", "completion_tokens", "total_tokens", "cost",
                "reasoning_tokens"):
        value = usage.get(key)
        if isinstance(value, (int, float)):
            total[key] = (total.get(key) or 0) + value


def _keep_steps(error: OpenRouterError, task: _Task) -> None:
    """The steps done stay on the error, and its message says so."""
    error.steps = tuple(task.steps)  # type: ignore[attr-defined]
    error.task_id = task.task_id  # type: ignore[attr-defined]
    error.attempts = task.requests
    if task.steps:
        error.message += (f" The task stopped after {len(task.steps)} step"
                          f"{'s' if len(task.steps) != 1 else ''} (kept in error.steps and "
                          "the ledger).")


# -- quota honesty --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Estimate:
    """A task's worst case against what is left."""

    worst_case: int
    day_remaining: int | None  # free models only
    budget_remaining: int | None
    minute_remaining: int
    day_reset_in_s: float

    @property
    def covered(self) -> bool:
        return all(left is None or left >= self.worst_case
                   for left in (self.day_remaining, self.budget_remaining))


def estimate(engine: Engine, model: str, max_steps: int) -> Estimate:
    """The worst case of a task of ``max_steps`` requests on ``model``, against what is left."""
    state = engine.quota.state()
    return Estimate(max_steps, state.day_remaining if is_free_model(model) else None,
                    state.budget_remaining, state.minute_remaining,
                    max(0.0, state.day_reset_at - state.now))


def _check_quota(engine: Engine, call: Call, task_id: str) -> None:
    options = call.options
    if options.go_ahead or options.max_steps <= 1 or engine.mode == "replay":
        return
    found = estimate(engine, options.model, options.max_steps)
    if found.covered:
        return
    short = [f"only {found.day_remaining} free requests are left today (the day resets in "
             f"{format_countdown(found.day_reset_in_s)})"
             if found.day_remaining is not None and found.day_remaining < found.worst_case
             else "",
             f"the session budget has {found.budget_remaining} left"
             if found.budget_remaining is not None and found.budget_remaining < found.worst_case
             else ""]
    error = TaskRefused(
        f"This tool task may need up to {found.worst_case} requests (max_steps="
        f"{options.max_steps}), but {' and '.join(s for s in short if s)}; nothing was sent. "
        "Lower max_steps (--max-steps N), or pass go_ahead=True (--go-ahead) to start anyway "
        "and stop when the quota runs out.")
    engine.record_failure(error, {**call.row(1, options.model), "task_id": task_id, "step": 0})
    error.call_id = call.call_id
    raise error
