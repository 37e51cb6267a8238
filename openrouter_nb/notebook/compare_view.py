"""The side-by-side comparison widget: one column per model (ipywidgets is imported here only).

:class:`CompareView` is a thin view over the results of ``Session.compare``: each column shows
the model asked for, the model that answered, latency, tokens, validity (or the error kind),
then the answer. Model output is untrusted, so the answer goes through :func:`markdown_html`,
which escapes every character of it first and only then adds a few Markdown tags of its own
(code blocks, inline code, bold, italics, headings, lists): nothing the model writes becomes
markup. The ``repr`` (the ``text/plain`` nbval compares) names each model and its outcome and
holds no latency, so it is the same on every run.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import ipywidgets as w

from .._text import redact
from ..api.errors import OpenRouterError
from ..comparison import compare_frame, compare_row

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from ..answer import Answer
    from ..session import Session

COLUMN_MIN_PX = 240
_FENCE = re.compile(r"^\s*(`{3,}|~{3,})")
_INLINE_CODE = re.compile(r"(`+)(.+?)\1")
_BOLD = re.compile(r"\*\*(\S(?:.*?\S)?)\*\*")
_ITALIC = re.compile(r"(?<![\w*])\*(\S(?:.*?\S)?)\*(?![\w*])")
_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+(.*)$")


def _inline(text: str) -> str:
    """Escape ``text``, then mark up inline code, bold and italics."""
    parts = _INLINE_CODE.split(text)
    out: list[str] = []
    for index in range(0, len(parts), 3):
        prose = html.escape(parts[index], quote=False)
        prose = _ITALIC.sub(r"<i>\1</i>", _BOLD.sub(r"<b>\1</b>", prose))
        out.append(prose)
        if index + 2 < len(parts):
            out.append(f"<code>{html.escape(parts[index + 2].strip(), quote=False)}</code>")
    return "".join(out)


def markdown_html(text: str) -> str:
    """A small, safe Markdown-to-HTML for untrusted text (no raw HTML, no links, no images)."""
    blocks: list[str] = []
    paragraph: list[str] = []
    items: list[str] = []
    code: list[str] | None = None
    fence = ""

    def flush() -> None:
        if paragraph:
            blocks.append("<p>" + "<br>".join(_inline(line) for line in paragraph) + "</p>")
            paragraph.clear()
        if items:
            blocks.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in items) + "</ul>")
            items.clear()

    for line in text.splitlines():
        opener = _FENCE.match(line)
        if code is not None:
            if opener and opener.group(1)[0] == fence[0] and len(opener.group(1)) >= len(fence):
                blocks.append(f"<pre><code>{html.escape(chr(10).join(code), quote=False)}</code></pre>")
                code = None
            else:
                code.append(line)
        elif opener:
            flush()
            code, fence = [], opener.group(1)
        elif not line.strip():
            flush()
        elif heading := _HEADING.match(line):
            flush()
            blocks.append(f"<b>{_inline(heading.group(2))}</b>")
        elif item := _ITEM.match(line):
            if paragraph:
                flush()
            items.append(item.group(1))
        else:
            if items:
                flush()
            paragraph.append(line)
    if code is not None:  # an unclosed fence: still shown as code
        blocks.append(f"<pre><code>{html.escape(chr(10).join(code), quote=False)}</code></pre>")
    flush()
    return "\n".join(blocks)


def outcome(result: Answer | OpenRouterError) -> str:
    """``ok`` for an answer, else the error kind (what the ``repr`` lists per model)."""
    return result.kind if isinstance(result, OpenRouterError) else "ok"


class CompareView(w.GridBox):
    """One column per model: header, served model, latency, tokens, validity, the answer."""

    def __init__(self, models: Sequence[str], results: Sequence[Answer | OpenRouterError],
                 **kwargs: Any) -> None:
        if len(models) != len(results):
            raise ValueError(f"{len(models)} models but {len(results)} results")
        self.models = list(models)
        self.results = list(results)
        self.columns = [self._column(model, result)
                        for model, result in zip(self.models, self.results, strict=True)]
        layout = w.Layout(grid_template_columns=f"repeat({max(1, len(self.models))}, "
                                                f"minmax({COLUMN_MIN_PX}px, 1fr))",
                          grid_gap="8px", width="100%")
        super().__init__(children=self.columns, layout=layout, **kwargs)

    @staticmethod
    def _column(model: str, result: Answer | OpenRouterError) -> w.VBox:
        row = compare_row(model, result)
        header = w.HTML(f"<b>{html.escape(model)}</b>")
        lines: list[str] = []
        if isinstance(result, OpenRouterError):
            lines.append(f'<span style="color:#c0392b">error: {html.escape(result.kind)}</span>')
            attempts = row["attempts"] or 0
            lines.append(f"{attempts} attempt{'s' if attempts != 1 else ''}")
            body = (f'<div style="color:#c0392b;white-space:pre-wrap">'
                    f"{html.escape(redact(result.message))}</div>")
        else:
            served = row["served_model"] or "?"
            lines.append(f"served by {html.escape(served)}" + (
                f" ({html.escape(row['provider'])})" if row["provider"] else ""))
            lines.append(f"{result.latency_s:.2f} s")
            lines.append(f"{row['prompt_tokens'] or 0} → {row['completion_tokens'] or 0} tokens")
            if result.validated is not None:
                lines.append("valid JSON" if result.validated else "invalid JSON")
            if result.attempts > 1:
                lines.append(f"{result.attempts} attempts")
            body = markdown_html(result.text)
        details = w.HTML('<small style="color:gray">' + "<br>".join(lines) + "</small>")
        answer = w.HTML(f'<div style="overflow-wrap:anywhere">{body}</div>')
        return w.VBox([header, details, answer],
                      layout=w.Layout(border="1px solid #ddd", padding="4px 8px"))

    def frame(self) -> pd.DataFrame:
        """The comparison as a DataFrame (``comparison.compare_frame``), one row per model."""
        return compare_frame(self.models, self.results)

    def __repr__(self) -> str:
        outcomes = ", ".join(f"{model} {outcome(result)}"
                             for model, result in zip(self.models, self.results, strict=True))
        count = len(self.models)
        return f"CompareView({count} model{'s' if count != 1 else ''}: {outcomes})"

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        data = super()._repr_mimebundle_(**kwargs)
        if isinstance(data, dict):
            data["text/plain"] = repr(self)  # ipywidgets cuts reprs at 110 characters
        return data


def compare_view(prompt: str, models: Sequence[str], session: Session | None = None,
                 **options: Any) -> CompareView:
    """Ask every model ``prompt`` in parallel (``Session.compare``) and show them side by side."""
    if session is None:
        from ..session import get_session

        session = get_session()
    return CompareView(models, session.compare(prompt, list(models), **options))
