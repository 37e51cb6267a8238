"""Terminal IPython: plain text written as it arrives, never a mime bundle re-printed.

A terminal cannot update an output in place, so :class:`TerminalDisplay` (the terminal twin of
:class:`~openrouter_nb.notebook.display.StreamingDisplay`, same callbacks) writes only the new
characters of an answer to the stream, a status line ("◷ asking…") that is erased
(``\\r`` + erase-line) once text arrives, and then the footer. Model text goes through
:func:`openrouter_nb.render.terminal_text`: no escape or control sequence of the model's reaches
the terminal, even one split over two chunks (the tail from the last ESC/C1 byte is held back
until the sequence is complete or the answer ends).

:func:`is_terminal` tells a terminal shell (``TerminalInteractiveShell``, or none at all) from a
kernel with a rich frontend. :func:`compare_text` and :func:`picker_text` are the terminal's
versions of the comparison view and the model picker.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO

from .._text import redact
from ..api.errors import OpenRouterError
from ..render import terminal_text
from .display import FORMATS, answer_bundle, error_bundle, event_status, interrupted_note

if TYPE_CHECKING:  # pragma: no cover
    from ..answer import Answer
    from ..api.types import StreamDelta
    from ..catalog import Catalog
    from ..quota import QuotaState

ERASE_LINE = "\r\x1b[2K"
HOLD_BACK = 4096  # the longest escape sequence held back before it is written as text
_ESCAPE_START = re.compile("[\x1b\x80-\x9f]")


#: force the terminal (True) or rich (False) experience; None: decided by the shell
FORCE: bool | None = None
_CURRENT: Any = object()


def is_terminal(shell: Any = _CURRENT) -> bool:
    """True for terminal IPython (or no shell at all); False inside a kernel.

    ``shell`` defaults to the running one (``get_ipython()``); :data:`FORCE` overrides both.
    """
    if FORCE is not None:
        return FORCE
    if shell is _CURRENT:
        from IPython.core.getipython import get_ipython

        shell = get_ipython()
    if shell is None:
        return True
    if getattr(shell, "kernel", None) is not None:
        return False
    return any(cls.__name__ == "TerminalInteractiveShell" for cls in type(shell).__mro__)


def _stable(text: str) -> str:
    """``text`` minus a trailing escape sequence that may still be incomplete."""
    tail = max(0, len(text) - HOLD_BACK)
    last = None
    for match in _ESCAPE_START.finditer(text, tail):
        last = match.start()
    return text if last is None else text[:last]


class TerminalDisplay:
    """One answer in a terminal: status line, incremental text, footer (or error, interrupt)."""

    def __init__(self, *, fmt: str = "markdown", stream: TextIO | None = None,
                 live: bool = True) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
        self.fmt = fmt
        self.live = live and fmt in ("markdown", "text")  # json/code: shown once, whole
        self.stream = stream
        self._raw: list[str] = []
        self._written = ""  # the sanitized text already on the terminal
        self._status = False  # a status line is on screen, to erase before the next write

    @property
    def text(self) -> str:
        return "".join(self._raw)

    def _out(self) -> TextIO:
        return self.stream if self.stream is not None else sys.stdout

    def _write(self, text: str) -> None:
        out = self._out()
        if self._status:
            out.write(ERASE_LINE)
            self._status = False
        out.write(text)
        out.flush()

    def _show_status(self, line: str, *, keep: bool = False) -> None:
        if self._written and not self._written.endswith("\n"):
            self._write("\n")
        line = line.replace("⏳", "◷")  # a symbol every terminal font has
        self._write(line + ("\n" if keep else ""))
        self._status = not keep

    # -- callbacks handed to Session.ask ----------------------------------------------------------
    def start(self, model: str) -> None:
        self._show_status(f"◷ asking {model}…")

    def on_delta(self, delta: StreamDelta) -> None:
        if getattr(delta, "kind", "text") != "text":
            return
        self._raw.append(delta.text)
        if self.live:
            self._flush(_stable(self.text))

    def on_event(self, name: str, details: dict[str, Any]) -> None:
        line = event_status(name, details)
        if name in ("retry", "fallback", "reask"):
            self._raw.clear()
            if self._written:  # a new attempt starts on a fresh line
                self._show_status("", keep=True)
            self._written = ""
        if line is not None:
            self._show_status(line, keep=True)

    def on_quota(self, state: QuotaState) -> None:
        if state.queue_place is not None:
            self._show_status(f"◷ place {state.queue_place} of {state.queue_size} in the class's "
                              f"queue, about {state.waiting_s:.0f} s")
        elif state.waiting_s > 0:
            self._show_status(f"◷ waiting {state.waiting_s:.0f} s for a per-minute slot")

    def _flush(self, raw: str) -> None:
        safe = terminal_text(raw)
        if safe.startswith(self._written) and len(safe) > len(self._written):
            self._write(safe[len(self._written):])
            self._written = safe

    # -- the end ----------------------------------------------------------------------------------
    def finish(self, answer: Answer) -> None:
        """The rest of the text (or the whole render for json/code), then the footer."""
        if self.live and self._written and answer.text == self.text:
            self._flush(answer.text)
            self._write(f"\n\n{terminal_text(answer.footer())}\n")
            return
        bundle, _code = answer_bundle(answer, self.fmt)
        self._restart()
        self._write(bundle["text/plain"] + "\n")

    def fail(self, error: OpenRouterError) -> None:
        self._restart()
        self._write(error_bundle(error)["text/plain"] + "\n")

    def interrupted(self) -> None:
        """Kernel interrupt / Ctrl-C: the text so far stays, one line says what was kept."""
        self._flush(self.text)
        self._restart()
        self._write(interrupted_note(len(self.text)) + "\n")

    def _restart(self) -> None:
        """Erase a status line; end a half-written line with a blank one."""
        if self._written:
            self._write("\n\n")
            self._written = ""
        elif self._status:
            self._write("")


def compare_text(models: Sequence[str], results: Sequence[Answer | OpenRouterError]) -> str:
    """The comparison for a terminal: each model's answer after a header line."""
    blocks = []
    for model, result in zip(models, results, strict=True):
        if isinstance(result, OpenRouterError):
            head = f"error: {result.kind}"
            body = redact(result.message)
        else:
            usage = result.usage or {}
            head = (f"served by {result.model} · {result.latency_s:.2f} s · "
                    f"{usage.get('prompt_tokens') or 0} → "
                    f"{usage.get('completion_tokens') or 0} tokens")
            body = result.text
        rule = "─" * max(8, min(72, len(model) + 4))
        blocks.append(terminal_text(f"── {model}\n{head}\n{rule}\n{body.strip()}"))
    return "\n\n".join(blocks)


def picker_text(catalog: Catalog, *, current: str, **filters: Any) -> str:
    """The free models as a table, with the hint a terminal needs instead of a dropdown."""
    from .picker import context_label

    models = catalog.filter(free=True, **filters)
    if not models:
        return "No free model matches these filters (%openrouter picker --help)."
    width = max(len(m.id) for m in models)
    lines = [f"  {'model':<{width}}  context  capabilities"]
    for model in models:
        caps = ", ".join(name for name, on in (("vision", model.vision), ("tools", model.tools),
                                               ("structured", model.structured)) if on)
        mark = "*" if model.id == current else " "
        lines.append(f"{mark} {model.id:<{width}}  {context_label(model.context_length):>7}  "
                     f"{caps or '-'}")
    lines.append(f"\n* the current default ({current}). To pin one: "
                 "orn.get_session().model = 'MODEL', or -m MODEL on a %%openrouter cell.")
    return terminal_text("\n".join(lines))
