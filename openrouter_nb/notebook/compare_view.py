"""The side-by-side comparison widget: one column per model (ipywidgets is imported here only).

:class:`CompareView` is a thin view over the results of ``Session.compare``: each column shows
the model asked for, the model that answered, latency, tokens, validity (or the error kind),
then the answer. Model output is untrusted, so the answer goes through
:func:`openrouter_nb.render.to_html` (CommonMark with raw HTML escaped and only safe link and
image targets, in linear time): nothing the model writes becomes markup. The ``repr`` (the
``text/plain`` nbval compares) names each model and its outcome and holds no latency, so it is
the same on every run.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import ipywidgets as w

from .._text import redact
from ..api.errors import OpenRouterError
from ..comparison import compare_frame, compare_row
from ..render import to_html

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from ..answer import Answer
    from ..session import Session

COLUMN_MIN_PX = 240
BORDER = "var(--jp-border-color2, rgba(128,128,128,0.35))"
#: ipywidgets' HTML widget sets a 28 px line height (one form row), which made answers read
#: double-spaced: the column's text sets its own
ANSWER_CSS = "overflow-wrap:anywhere;line-height:1.4"


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
        header, details, answer = column_html(model, result)
        return w.VBox([w.HTML(header), w.HTML(details), w.HTML(answer)],
                      layout=w.Layout(border=f"1px solid {BORDER}", padding="4px 8px"))

    def frame(self) -> pd.DataFrame:
        """The comparison as a DataFrame (``comparison.compare_frame``), one row per model."""
        return compare_frame(self.models, self.results)

    def html(self) -> str:
        """The columns as plain HTML: the fallback where widgets do not render."""
        columns = "".join(
            f'<div style="border:1px solid {BORDER};padding:4px 8px">{"".join(parts)}</div>'
            for parts in (column_html(m, r) for m, r in zip(self.models, self.results,
                                                             strict=True)))
        return (f'<div style="display:grid;grid-template-columns:repeat({max(1, len(self.models))},'
                f' minmax({COLUMN_MIN_PX}px, 1fr));gap:8px">{columns}</div>')

    def __repr__(self) -> str:
        outcomes = ", ".join(f"{model} {outcome(result)}"
                             for model, result in zip(self.models, self.results, strict=True))
        count = len(self.models)
        return f"CompareView({count} model{'s' if count != 1 else ''}: {outcomes})"

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        data = super()._repr_mimebundle_(**kwargs)
        if isinstance(data, dict):
            data["text/plain"] = repr(self)  # ipywidgets cuts reprs at 110 characters
            data["text/html"] = self.html()
        return data


def column_html(model: str, result: Answer | OpenRouterError) -> tuple[str, str, str]:
    """Header, details and answer of one column, as sanitized HTML (model text escaped)."""
    row = compare_row(model, result)
    header = f"<b>{html.escape(model)}</b>"
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
        body = to_html(result.text)
    details = ('<small style="color:gray;line-height:1.4;display:block">'
               + "<br>".join(lines) + "</small>")
    answer = f'<div class="orn-compare-answer" style="{ANSWER_CSS}">{body}</div>'
    return header, details, answer


def compare_view(prompt: str, models: Sequence[str], session: Session | None = None,
                 **options: Any) -> CompareView:
    """Ask every model ``prompt`` in parallel (``Session.compare``) and show them side by side."""
    if session is None:
        from ..session import get_session

        session = get_session()
    return CompareView(models, session.compare(prompt, list(models), **options))
