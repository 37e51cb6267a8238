"""``Answer``: what a call returns. A plain object with a thin notebook repr."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .render import to_html


@dataclass
class Answer:
    """The outcome of one call (all of its attempts).

    ``model`` is the model that actually answered; ``requested_model`` the one asked for.
    ``usage`` holds ``prompt_tokens``, ``completion_tokens``, ``total_tokens`` and ``cost``.
    ``data`` holds the validated JSON when a schema was given.
    """

    text: str
    model: str | None
    requested_model: str
    provider: str | None
    usage: dict[str, Any]
    latency_s: float
    call_id: str
    attempts: int
    sandbox: bool
    ttft_s: float | None = None
    generation_id: str | None = None
    finish_reason: str | None = None
    data: Any = None
    validated: bool | None = None
    fallback: str | None = None  # set when an explicit fallback model answered
    day_remaining: int | None = None
    mode: str = "live"  # "live", "sandbox" or "replay"
    reasoning: str | None = None  # what a reasoning model thought (None: none returned)
    message: dict[str, Any] | None = field(default=None, repr=False)  # as echoed in history
    conversation: str | None = None  # the conversation's name, when asked in one
    turn: int | None = None
    model_changed_from: str | None = None  # a conversation's previous turn was this model
    notes: tuple[str, ...] = ()  # warnings for the footer (cut at max_tokens, turns dropped)
    extra: dict[str, Any] = field(default_factory=dict, repr=False)
    # tool tasks (agent.py): each model call of the task, and what the task added to history
    steps: tuple[Step, ...] = ()
    task_id: str | None = None
    task_messages: tuple[Any, ...] = field(default=(), repr=False)
    day_limit: int | None = None  # today's free quota, for "N% of today's free quota"

    def __str__(self) -> str:
        return self.text

    @property
    def routed(self) -> bool:
        """True when a router (e.g. ``openrouter/free``) picked the model."""
        return bool(self.model) and self.model != self.requested_model and not self.fallback

    @property
    def reasoning_tokens(self) -> int | None:
        """Tokens the model spent thinking (part of ``completion_tokens``), when reported."""
        value = self.usage.get("reasoning_tokens")
        return value if isinstance(value, int) else None

    def footer(self) -> str:
        """One line: who answered, how fast, at what cost in tokens and quota."""
        parts: list[str] = []
        if self.turn is not None:
            prompt_tokens = self.usage.get("prompt_tokens")
            size = f" · {prompt_tokens:,} prompt tokens" if prompt_tokens is not None else ""
            parts.append(f"turn {self.turn}{size}")
        if self.model_changed_from:
            parts.append(f"model changed: {self.model_changed_from} → {self.model}")
        if self.fallback:
            parts.append(f"fallback: requested {self.requested_model}, answered by {self.model}")
        elif self.model and self.model != self.requested_model:
            parts.append(f"{self.requested_model} → {self.model}")
        else:
            parts.append(self.model or self.requested_model)
        if self.provider:
            parts.append(self.provider)
        parts.append(f"{self.latency_s:.2f} s")
        prompt, completion = self.usage.get("prompt_tokens"), self.usage.get("completion_tokens")
        if prompt is not None or completion is not None:
            thought = self.reasoning_tokens
            parts.append(f"{prompt or 0} → {completion or 0} tokens"
                         + (f" ({thought} thinking)" if thought else ""))
        if self.attempts > 1 and not self.steps:
            parts.append(f"{self.attempts} attempts")
        if self.validated is not None:
            parts.append("valid JSON" if self.validated else "invalid JSON")
        if self.steps:
            parts.append(self.task_cost())
        if self.day_remaining is not None:
            parts.append(f"{self.day_remaining} free requests left today")
        if self.extra.get("cached_at") is not None:
            at = datetime.fromtimestamp(self.extra["cached_at"], tz=timezone.utc)
            parts.append(f"cached from {at:%H:%M} UTC (nothing sent)")
        parts.extend(f"⚠ {note}" for note in self.notes)
        if self.mode == "sandbox":
            parts.append("sandbox: simulated answer")
        elif self.mode == "replay":
            parts.append("replay: recorded answer" + (", simulated" if self.sandbox else ""))
        return " · ".join(parts)

    def task_cost(self) -> str:
        """"5 requests for this task · 10% of today's free quota" (free models)."""
        n = self.attempts
        text = f"{n} request{'s' if n != 1 else ''} for this task"
        if self.day_remaining is not None and self.day_limit:
            text += f" · {100 * n / self.day_limit:.0f}% of today's free quota"
        return text

    def trace_text(self) -> str:
        """The task's steps as plain text, one line per tool call."""
        return trace_text(self.steps)

    def _repr_html_(self) -> str:
        """The answer as sanitized HTML (:func:`openrouter_nb.render.to_html`), footer under it.

        No ``_repr_markdown_``: a frontend never parses the model's Markdown itself.
        """
        return (f'{to_html(self.text)}{trace_html(self.steps)}'
                f'<small style="color:gray">{html.escape(self.footer())}</small>')

    def __repr__(self) -> str:
        return f"Answer({self.text[:60]!r}…, model={self.model!r}, attempts={self.attempts})" \
            if len(self.text) > 60 else \
            f"Answer({self.text!r}, model={self.model!r}, attempts={self.attempts})"


@dataclass(frozen=True)
class Step:
    """One model call of a tool task: the tools it asked for (run, with their results)."""

    step: int
    model: str | None
    latency_s: float
    tool_calls: tuple[Any, ...] = ()  # tools.ToolRun: name, arguments, result or error
    text: str = ""
    attempts: int = 1
    call_id: str | None = None


def trace_text(steps: tuple[Step, ...]) -> str:
    """A compact trace: step, tool, arguments, result, latency."""
    lines = []
    for step in steps:
        head = f"step {step.step} · {step.model or '?'} · {step.latency_s:.2f} s"
        if not step.tool_calls:
            lines.append(f"{head} · answered")
        for run in step.tool_calls:
            lines.append(f"{head} · {run.line()}")
    return "\n".join(lines)


def trace_html(steps: tuple[Step, ...]) -> str:
    """The trace as a small escaped table (model text and tool output are untrusted)."""
    if not steps:
        return ""
    rows = []
    for step in steps:
        runs = step.tool_calls or (None,)
        for run in runs:
            what = "answered" if run is None else run.line()
            colour = ' style="color:#b36b00"' if run is not None and run.error else ""
            rows.append(f"<tr><td>{step.step}</td><td>{html.escape(step.model or '?')}</td>"
                        f"<td{colour}>{html.escape(what)}</td>"
                        f"<td>{step.latency_s:.2f} s</td></tr>")
    return ('<table style="font-size:smaller;color:gray"><tr><th>step</th><th>model</th>'
            f'<th>tool call → result</th><th>latency</th></tr>{"".join(rows)}</table>')
