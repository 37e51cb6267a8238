"""Answers in the notebook: a throttled live stream through one handle, then the final render.

While an answer streams, the text so far is shown through ONE display handle, updated at most
``MAX_UPDATES_PER_S`` (15) times a second however fast chunks arrive. When the answer is
complete the same handle shows the final render (sanitized HTML from the Markdown, plain text,
pretty JSON or a code block) and the one-line footer naming the model that answered.

``OPENROUTER_NB_STREAM_DISPLAY=final`` turns live streaming off: the answer is then shown once,
when it is complete, as a single ``display_data`` and no ``update_display_data``. nbval compares
only the first display of a handle with the saved output, so notebooks tested with nbval need this
(the test suite's ``conftest.py`` sets it). ``%%openrouter --no-stream`` does the same for one cell.

With ``--schema`` the final render adds the validated data, pretty-printed in a JSON code
block under the text, and a re-ask after invalid JSON shows as a status line.

Model output is untrusted: every bundle holds ``text/html`` made by :mod:`openrouter_nb.render`
(a CommonMark parser that escapes raw HTML and allows only safe link and image targets) and
``text/plain`` with terminal escape sequences removed; no ``text/markdown``, so no frontend
parses model text itself. Error text is HTML-escaped. The display target and the clock are
injected, so tests and benchmarks count updates without a frontend.
"""

from __future__ import annotations

import html
import json
import math
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from .._text import redact
from ..answer import trace_html
from ..render import PREVIEW_BUDGET_MS, code_blocks, code_html, pre_html, terminal_text, to_html

if TYPE_CHECKING:  # pragma: no cover
    from ..answer import Answer
    from ..api.errors import OpenRouterError
    from ..api.types import StreamDelta
    from ..quota import QuotaState

STREAM_ENV = "OPENROUTER_NB_STREAM_DISPLAY"
MAX_UPDATES_PER_S = 15.0
FORMATS = ("markdown", "text", "json", "code")
_OFF = {"final", "off", "0", "false", "no"}
_C1 = re.compile("[\x7f-\x9f]")
_WARN_KINDS = ("rate_limit_minute", "rate_limit_day", "upstream_rate_limit", "budget")

Bundle = dict[str, str]


def live_streaming_enabled(env: Mapping[str, str] | None = None) -> bool:
    """False when ``OPENROUTER_NB_STREAM_DISPLAY`` is ``final`` (or off/0/false/no)."""
    value = (os.environ if env is None else env).get(STREAM_ENV, "live")
    return value.strip().lower() not in _OFF


class DisplayTarget(Protocol):
    """Where bundles go: ``show`` makes the output, ``update`` replaces it in place."""

    def show(self, bundle: Bundle, *, updatable: bool) -> None: ...

    def update(self, bundle: Bundle) -> None: ...


class IPythonTarget:
    """The real frontend: ``IPython.display.display`` and a ``DisplayHandle``."""

    def __init__(self) -> None:
        self._handle: Any = None

    def show(self, bundle: Bundle, *, updatable: bool) -> None:
        from IPython.display import display

        if updatable:
            self._handle = display(bundle, raw=True, display_id=True)
        else:
            display(bundle, raw=True)

    def update(self, bundle: Bundle) -> None:
        if self._handle is None:
            self.show(bundle, updatable=True)
        else:
            self._handle.update(bundle, raw=True)


# -- rendering ------------------------------------------------------------------------------------
def extract_code(text: str) -> tuple[str, str] | None:
    """``(code, language)`` of the first fenced code block of ``text``; None when it has none."""
    blocks = code_blocks(text)
    return (blocks[0][1], blocks[0][0]) if blocks else None


def _json(value: Any) -> str:
    """Indented JSON; DEL and C1 controls escaped too (``\\u009b``), so it prints safely."""
    text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    return _C1.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


def data_json(data: Any) -> str:
    """Validated data (a JSON value or a pydantic model) as indented JSON."""
    if hasattr(data, "model_dump"):
        data = data.model_dump(mode="json")
    return _json(data)


def _bundle(plain: str, body: str, footer: str) -> Bundle:
    """Terminal-safe text and sanitized HTML (``body`` already is), the footer under both."""
    return {"text/plain": terminal_text(f"{plain}\n\n{footer}"),
            "text/html": f'{body}<small style="color:gray">{html.escape(footer)}</small>'}


def _json_bundle(text: str, data: str | None, footer: str) -> Bundle:
    """The data, else the first fenced block (else the whole text) parsed as JSON."""
    if data is None:
        blocks = code_blocks(text)
        try:
            data = _json(json.loads(blocks[0][1] if blocks else text))
        except (ValueError, RecursionError) as error:
            note = f"(not valid JSON: {str(error) or 'nested too deeply'}; shown as text)"
            return _bundle(f"{text}\n\n{note}",
                           f"{pre_html(text)}<p><em>{html.escape(note)}</em></p>", footer)
    return _bundle(data, code_html(data, "json"), footer)


def thinking_html(reasoning: str, *, live: bool, tokens: int | None = None) -> str:
    """The model's reasoning as a collapsible section: open while it thinks, folded after."""
    if live:
        summary = "thinking…"
    else:
        summary = f"thought for {tokens:,} tokens" if tokens else "thinking"
    body = to_html(reasoning, budget_ms=PREVIEW_BUDGET_MS) if live else to_html(reasoning)
    return (f'<details{" open" if live else ""} style="color:gray;margin-bottom:0.5em">'
            f"<summary>{html.escape(summary)}</summary>{body}</details>")


def _with_thinking(bundle: Bundle, answer: Answer) -> Bundle:
    """``bundle`` with the folded reasoning above it (unless the answer *is* the reasoning)."""
    if not answer.reasoning or answer.reasoning == answer.text:
        return bundle
    # The plain text stays the answer: its footer already counts the thinking tokens.
    folded = thinking_html(answer.reasoning, live=False, tokens=answer.reasoning_tokens)
    return {**bundle, "text/html": folded + bundle["text/html"]}


def answer_bundle(answer: Answer, fmt: str = "markdown") -> tuple[Bundle, str | None]:
    """The final render of ``answer`` in ``fmt``; also the code to offer as the next cell.

    A validated answer (``--schema``) also shows its data as pretty JSON under the text
    (in ``json`` format, the data replaces the text). In ``code`` format, only the first
    fenced code block is shown and offered; an answer without one is shown as text, with a
    note, and nothing is offered.
    """
    text, footer = answer.text, answer.footer()
    data = data_json(answer.data) if answer.validated else None
    plain_data = f"\n\n{data}" if data is not None else ""
    html_data = code_html(data, "json") if data is not None else ""
    if fmt == "text":
        html_data = pre_html(data) if data is not None else ""
        return _bundle(f"{text}{plain_data}", f"{pre_html(text)}{html_data}", footer), None
    if fmt == "json":
        return _json_bundle(text, data, footer), None
    if fmt == "code":
        found = extract_code(text)
        if found is None:
            note = "(no fenced code block in the answer: nothing inserted)"
            return _bundle(f"{text}{plain_data}\n\n{note}",
                           f"{pre_html(text)}{html_data}<p><em>{note}</em></p>", footer), None
        code, lang = found
        return _bundle(f"{code}{plain_data}", f"{code_html(code, lang)}{html_data}", footer), code
    bundle = _bundle(f"{text}{plain_data}", f"{to_html(text)}{html_data}", footer)
    return _with_trace(_with_thinking(bundle, answer), answer), None


def _with_trace(bundle: Bundle, answer: Answer) -> Bundle:
    """A tool task's steps under the answer, above the footer (escaped: tool output and
    arguments are untrusted)."""
    if not answer.steps:
        return bundle
    plain, footer = bundle["text/plain"], terminal_text(answer.footer())
    head = plain[: -len(footer)] if footer and plain.endswith(footer) else f"{plain}\n\n"
    shown = head + terminal_text(answer.trace_text()) + "\n\n" + footer
    body = bundle["text/html"]
    cut = body.rfind('<small style="color:gray">')
    html_body = body[:cut] + trace_html(answer.steps) + body[cut:] if cut >= 0 else body
    return {**bundle, "text/plain": shown, "text/html": html_body}


def tool_status(forming: dict[int, list[str]], delta: StreamDelta) -> str:
    """``🔧 calling population({"city": "Ly…``: the tool calls of a stream as they form."""
    index = delta.tool_index or 0
    forming.setdefault(index, []).append(delta.text)
    args = "".join(forming[index])
    shown = args if len(args) <= 60 else args[:59] + "…"
    return f"🔧 calling {delta.tool_name or 'a tool'}({shown}"


def error_bundle(error: OpenRouterError) -> Bundle:
    """A short coloured message: the kind, what to do, the call id and attempts. No traceback."""
    message = redact(error.message)
    details = [f"call {error.call_id}" if error.call_id else "",
               f"{error.attempts} attempt{'s' if error.attempts != 1 else ''}",
               "logged in the ledger (%openrouter log)"]
    if error.partial_text and error.kind == "invalid_output":
        details.insert(2, f"last answer {len(error.partial_text)} characters, not valid")
    elif error.partial_text and error.kind == "truncated":
        details.insert(2, f"{len(error.partial_text)} characters of reasoning kept "
                          "(error.partial_text), no answer")
    elif error.partial_text:
        details.insert(2, f"{len(error.partial_text)} characters received before the failure")
    detail = " · ".join(d for d in details if d)
    colour = "#b36b00" if error.kind in _WARN_KINDS else "#c0392b"
    return {
        "text/plain": terminal_text(f"OpenRouter error ({error.kind}): {message}\n{detail}"),
        "text/html": (
            f'<div style="border-left:4px solid {colour};padding:4px 10px;color:{colour}">'
            f"<b>OpenRouter error: {html.escape(error.kind)}</b><br>{html.escape(message)}<br>"
            f'<small style="color:gray">{html.escape(detail)}</small></div>'
        ),
    }


#: ⏳ is an empty box where no emoji font is installed: in HTML a small CSS ring stands in
#: for it (no font needed); text/plain keeps the character
WAIT_ICON_HTML = ('<span style="display:inline-block;'
                  "width:0.7em;height:0.7em;margin-right:0.35em;vertical-align:-0.05em;"
                  "border:2px solid currentColor;border-right-color:transparent;"
                  'border-radius:50%"></span>')


def status_html(status: str) -> str:
    """A status line as HTML, escaped, its ⏳ drawn without an emoji font."""
    return html.escape(status).replace("⏳ ", WAIT_ICON_HTML).replace("⏳", WAIT_ICON_HTML)


def interrupted_note(characters: int) -> str:
    """The line that ends an interrupted answer (the ledger row is written by the pipeline)."""
    kept = f"{characters:,} character{'s' if characters != 1 else ''}"
    return f"■ interrupted — {kept} kept in the ledger (%openrouter log)"


def interrupted_bundle(text: str, fmt: str = "markdown") -> Bundle:
    """The text that had arrived, no cursor, and the interrupted line under it."""
    note = interrupted_note(len(text))
    body = to_html(text) if fmt == "markdown" else pre_html(text) if text else ""
    plain = f"{text}\n\n{note}" if text else note
    return {"text/plain": terminal_text(plain),
            "text/html": f'{body}<small style="color:gray">{html.escape(note)}</small>'}


def event_status(name: str, details: Mapping[str, Any]) -> str | None:
    """One status line for a session event ("retry", "fallback", "reask", "waited")."""
    attempt = int(details.get("attempt") or 0) + 1
    if name == "reask":
        reason = " ".join(str(details.get("error") or "does not match the schema").split())
        return f"↻ invalid JSON ({reason}), asking again (attempt {attempt})"
    if name == "retry":
        error, wait = details.get("error"), float(details.get("wait_s") or 0.0)
        what = _reason(details, error)
        return f"⏳ {what}: waiting {wait:.0f} s, attempt {attempt}"
    if name == "fallback":
        return f"↪ {_reason(details, details.get('error'))}: trying the next fallback, " \
               f"attempt {attempt}"
    if name == "step" and int(details.get("step") or 1) > 1:
        return f"🔧 step {details.get('step')} of at most {details.get('max_steps')}: " \
               "sending the tool results back"
    if name == "tool" and details.get("run") is not None:
        return f"🔧 {details['run'].line()}"
    if name == "waited":
        return f"⏳ waited {float(details.get('seconds') or 0):.0f} s for a per-minute slot"
    return None


def _reason(details: Mapping[str, Any], error: Any) -> str:
    reason = str(details.get("reason") or getattr(error, "kind", "") or "retrying")
    return reason.split(":")[0]


def waiting_status(seconds: float, limit: int, window_s: float = 60.0,
                   place: int | None = None, waiting: int | None = None) -> str:
    """``⏳ waiting 31 s for a free slot (20/minute)``: the line a cell shows while paced; in a
    class, ``⏳ place 3 of 12 in the class's queue, about 9 s (20/minute for the class)``."""
    per = "minute" if window_s == 60.0 else f"{window_s:g} s"
    if place is not None:
        return (f"⏳ place {place} of {waiting or place} in the class's queue, about "
                f"{math.ceil(seconds)} s ({limit}/{per} for the class)")
    return f"⏳ waiting {math.ceil(seconds)} s for a free slot ({limit}/{per})"


class StreamingDisplay:
    """Shows one answer: live text at a bounded rate, status lines, then the final render.

    ``live=False`` shows nothing until :meth:`finish` or :meth:`fail`, which then make exactly
    one output. ``target`` and ``clock`` are injectable (tests, benchmarks).
    """

    def __init__(self, *, live: bool = True, fmt: str = "markdown",
                 target: DisplayTarget | None = None, clock: Callable[[], float] = time.monotonic,
                 max_rate: float = MAX_UPDATES_PER_S, shell: Any = None) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
        self.live = live
        self.fmt = fmt
        self.target: DisplayTarget = target if target is not None else IPythonTarget()
        self.clock = clock
        self.interval = 1.0 / max_rate
        self.shell = shell
        self.updates = 0  # outputs sent, the first one included
        self.status = ""
        self._chunks: list[str] = []
        self._thinking: list[str] = []  # reasoning deltas, shown above the answer
        self._tool_args: dict[int, list[str]] = {}  # tool calls forming: index -> pieces
        self._shown = False
        self._asking = False
        self._last = float("-inf")
        self._thread = threading.get_ident()  # outputs only from the thread that made the view

    @property
    def text(self) -> str:
        """The text received in the current attempt."""
        return "".join(self._chunks)

    # -- callbacks handed to Session.ask ----------------------------------------------------------
    def start(self, model: str) -> None:
        """Open the handle with a waiting line (live mode only)."""
        self.status, self._asking = f"⏳ asking {model}…", True
        self._refresh(force=True)

    def on_delta(self, delta: StreamDelta) -> None:
        kind = getattr(delta, "kind", "text")
        if kind == "reasoning":
            self._thinking.append(delta.text)
        elif kind == "text":
            self._chunks.append(delta.text)
        elif kind == "tool_call":  # shown as it forms, in the status line
            self.status = tool_status(self._tool_args, delta)
            self._asking = False
            self._refresh()
            return
        else:
            return
        if self._asking:
            self.status, self._asking = "", False
        if self.live:
            self._refresh()

    def on_event(self, name: str, details: dict[str, Any]) -> None:
        line = event_status(name, details)
        if name in ("retry", "fallback", "reask", "step"):
            self._tool_args.clear()
            self._chunks.clear()  # a new attempt starts from nothing
            self._thinking.clear()
        if line is not None:
            self.status = line
            self._refresh(force=True)

    def on_quota(self, state: QuotaState) -> None:
        """Quota listener for the duration of a call: a pacing wait as a countdown in the cell.

        The tracker calls it as the wait starts and about once a second while it lasts; only
        calls from the thread that owns this view change it, and only when the shown
        number of seconds changes.
        """
        if state.waiting_s > 0 and threading.get_ident() == self._thread:
            status = waiting_status(state.waiting_s, state.minute_limit, state.window_s,
                                    state.queue_place, state.queue_size)
            if status != self.status:
                self.status = status
                self._refresh(force=True)

    # -- the end ----------------------------------------------------------------------------------
    def finish(self, answer: Answer) -> str | None:
        """Show the final render; for ``code``, offer it as the next cell and return it."""
        bundle, code = answer_bundle(answer, self.fmt)
        self._emit(bundle)
        if code is not None:
            shell = self.shell
            if shell is None:
                from IPython.core.getipython import get_ipython

                shell = get_ipython()
            if shell is not None:
                shell.set_next_input(code, replace=False)
        return code

    def fail(self, error: OpenRouterError) -> None:
        self._emit(error_bundle(error))

    def interrupted(self) -> None:
        """Kernel -> Interrupt: the text so far (no cursor) and a line saying what was kept."""
        self._emit(interrupted_bundle(self.text, self.fmt))

    # -- internals --------------------------------------------------------------------------------
    def _refresh(self, force: bool = False) -> None:
        if not self.live:
            return
        now = self.clock()
        if not force and now - self._last < self.interval:
            return
        self._last = now
        self._emit(self._preview())

    def _preview(self) -> Bundle:
        text, thinking = self.text, "".join(self._thinking)
        head = f"{self.status}\n\n" if self.status else ""
        if thinking and not text:
            head += "(thinking…)\n\n"
        bundle = {"text/plain": terminal_text(f"{head}{text}▌" if text else head.strip())}
        if self.fmt == "markdown" and (text or self.status or thinking):
            status = f"<p><em>{status_html(self.status)}</em></p>" if self.status else ""
            folded = thinking_html(thinking, live=not text) if thinking else ""
            body = to_html(f"{text}▌", budget_ms=PREVIEW_BUDGET_MS) if text else ""
            bundle["text/html"] = f"{status}{folded}{body}"
        return bundle

    def _emit(self, bundle: Bundle) -> None:
        self.updates += 1
        if self._shown:
            self.target.update(bundle)
        else:
            self._shown = True
            self.target.show(bundle, updatable=self.live)
