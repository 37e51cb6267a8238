"""``%openrouter log``: the ledger's newest rows as a compact table, one line per attempt.

:class:`LogView` is a thin view over a ledger DataFrame (``Ledger.dataframe``): time to the
second in local time, a status mark, requested → served model (vendor prefixes dropped),
latency, tokens, error kind and a prompt excerpt, newest first. Its HTML uses JupyterLab's CSS
variables (with fallbacks) and mid-tone marks, so it reads in light and dark themes; its
``text/plain`` is an aligned table for terminals and nbval. Model text (the prompt excerpt, the
error kind) is made terminal-safe and HTML-escaped. ``orn.log()`` stays the full DataFrame;
``view.frame`` (or ``view["column"]``) reaches it from here.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._text import shorten
from ..render import terminal_text

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

PROMPT_WIDTH = 48
MARKS = {"ok": "✓", "error": "✗", "interrupted": "■", "cached": "↺"}
#: mid-tone colours, readable on white and on JupyterLab's dark background
COLOURS = {"ok": "#3a9a4a", "error": "#d9534f", "interrupted": "#c88a00", "cached": "#5b8def"}
HEADERS = ("time", "", "model", "latency", "tokens", "error", "prompt")
_CSS = (
    "border-collapse:collapse;font-size:var(--jp-code-font-size,12px);"
    "font-family:var(--jp-code-font-family,monospace);color:var(--jp-ui-font-color1,inherit);"
    "background:transparent"
)
_CELL = ("padding:1px 8px;text-align:left;white-space:nowrap;"
         "border-bottom:1px solid var(--jp-border-color2,rgba(128,128,128,0.3))")
_DIM = "color:var(--jp-ui-font-color2,gray)"


def _missing(value: Any) -> bool:
    """None, NaN, NaT or pd.NA."""
    if value is None:
        return True
    try:
        return bool(value != value)
    except TypeError:  # pd.NA
        return True


def short_model(model: Any) -> str:
    """``google/gemma-3-27b-it:free`` → ``gemma-3-27b-it:free``; routers keep their name."""
    if not isinstance(model, str) or not model:
        return ""
    return model if model.startswith("openrouter/") else model.split("/", 1)[-1]


def model_cell(requested: Any, served: Any) -> str:
    """``free → gpt-oss-20b:free`` when another model answered, else the one model."""
    asked, got = short_model(requested), short_model(served)
    return f"{asked} → {got}" if got and got != asked else asked or got


def local_time(value: Any, today: dt.date | None = None) -> str:
    """``14:03:27`` in local time; ``12-05 14:03:27`` for another day."""
    if _missing(value):
        return ""
    stamp = value.to_pydatetime(warn=False) if hasattr(value, "to_pydatetime") else value
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.timezone.utc)
    local: dt.datetime = stamp.astimezone()
    today = today or dt.datetime.now().astimezone().date()
    return local.strftime("%H:%M:%S" if local.date() == today else "%m-%d %H:%M:%S")


def _number(value: Any) -> int | None:
    try:
        return None if _missing(value) else int(value)
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class LogLine:
    """One attempt, as the table shows it (every field plain, terminal-safe text)."""

    time: str
    status: str
    model: str
    latency: str
    tokens: str
    error: str
    prompt: str

    @property
    def mark(self) -> str:
        return MARKS.get(self.status, "?")

    def cells(self) -> tuple[str, ...]:
        return (self.time, self.mark, self.model, self.latency, self.tokens, self.error,
                self.prompt)


def log_line(row: Any, today: dt.date | None = None) -> LogLine:
    latency = row.get("latency_s")
    prompt, completion = _number(row.get("prompt_tokens")), _number(row.get("completion_tokens"))
    tokens = "" if prompt is None and completion is None else \
        f"{prompt if prompt is not None else '?'} → {completion if completion is not None else '?'}"
    kind = row.get("error_kind")
    return LogLine(
        time=local_time(row.get("time"), today),
        status=str(row.get("status") or ""),
        model=terminal_text(model_cell(row.get("requested_model"), row.get("served_model"))),
        latency="" if _missing(latency) else f"{float(latency):.2f} s",
        tokens=tokens,
        error=terminal_text(str(kind)) if isinstance(kind, str) else "",
        prompt=shorten(terminal_text(prompt_text if isinstance(prompt_text := row.get("prompt"), str)
                                     else ""), PROMPT_WIDTH),
    )


class LogView:
    """The newest ledger rows, compact; ``frame`` is the DataFrame they come from."""

    def __init__(self, frame: pd.DataFrame, *, today: dt.date | None = None) -> None:
        self.frame = frame
        self.lines = [log_line(row, today) for row in frame.to_dict("records")]

    def __len__(self) -> int:
        return len(self.lines)

    def __getitem__(self, key: Any) -> Any:
        """``view["status"]``, ``view[["a", "b"]]``: columns of :attr:`frame`."""
        return self.frame[key]

    def __contains__(self, column: object) -> bool:
        return column in self.frame

    def __iter__(self) -> Iterator[Any]:
        """The column names, as a DataFrame's."""
        return iter(self.frame)

    def __repr__(self) -> str:
        if not self.lines:
            return "The ledger is empty: nothing asked yet (ask with %%openrouter)."
        rows = [HEADERS, *(line.cells() for line in self.lines)]
        widths = [max(len(row[i]) for row in rows) for i in range(len(HEADERS))]
        text = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
                .rstrip() for row in rows]
        return "\n".join(text)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))

    def _repr_html_(self) -> str:
        if not self.lines:
            return f"<p style='{_DIM}'>{html.escape(repr(self))}</p>"
        head = "".join(f"<th style='{_CELL};{_DIM};font-weight:normal'>{html.escape(h)}</th>"
                       for h in HEADERS)
        body = "".join(self._html_row(line) for line in self.lines)
        return (f"<table class='orn-log' style='{_CSS}'><thead><tr>{head}</tr></thead>"
                f"<tbody>{body}</tbody></table>")

    @staticmethod
    def _html_row(line: LogLine) -> str:
        colour = COLOURS.get(line.status, "gray")
        cells = [
            f"<td style='{_CELL};{_DIM}'>{html.escape(line.time)}</td>",
            f"<td style='{_CELL};color:{colour};font-weight:bold' title='{html.escape(line.status)}'>"
            f"{html.escape(line.mark)}</td>",
            f"<td style='{_CELL}'>{html.escape(line.model)}</td>",
            f"<td style='{_CELL};text-align:right'>{html.escape(line.latency)}</td>",
            f"<td style='{_CELL};text-align:right'>{html.escape(line.tokens)}</td>",
            f"<td style='{_CELL};color:{colour}'>{html.escape(line.error)}</td>",
            f"<td style='{_CELL};{_DIM};max-width:32em;overflow:hidden;text-overflow:ellipsis'>"
            f"{html.escape(line.prompt)}</td>",
        ]
        return f"<tr class='orn-log-{html.escape(line.status)}'>{''.join(cells)}</tr>"
