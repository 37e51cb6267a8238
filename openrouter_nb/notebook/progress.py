"""A progress bar for ``orn.batch``: answered, failed, in flight and not sent, never confused.

A thin ipywidgets adapter over :class:`openrouter_nb.batching.BatchProgress`. The bar is one
stacked strip of fixed width (answered green, failed red, in flight blue, not sent left empty
and counted in the label), so a batch stopped by the daily limit never reads ``30/30``; a long
stop message wraps under the label instead of squeezing the bar. It only sets traits, so it
may be fed from any thread. Its repr (the ``text/plain`` nbval compares) holds the row counts
and nothing that depends on timing; its ``text/html`` (where widgets do not render: VS Code
without the widget renderer, nbviewer, GitHub) is the same strip and label, as of display time.
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as widgets

from ..batching import BatchProgress

BAR_PX = 240
COLOURS = {"answered": "#3a9a4a", "failed": "#d9534f", "in flight": "#5b8def"}
_EMPTY = "rgba(128,128,128,0.25)"  # the unsent part: visible on light and dark backgrounds


def counts(state: BatchProgress) -> dict[str, int]:
    """Rows answered (resumed ones included), failed, in flight and not sent."""
    in_flight = int(getattr(state, "in_flight", 0) or 0)
    return {"answered": max(0, state.done - state.failed), "failed": state.failed,
            "in flight": in_flight,
            "not sent": max(0, state.total - state.done - in_flight)}


def summary(state: BatchProgress) -> str:
    """``20 answered (3 from the ledger) · 1 failed · 9 not sent · of 30 rows``."""
    parts = []
    for name, count in counts(state).items():
        if not count and name != "answered":
            continue
        text = f"{count} {name}"
        if name == "answered" and state.resumed:
            text += f" ({state.resumed} from the ledger)"
        parts.append(text)
    parts.append(f"of {state.total} rows")
    if state.day_remaining is not None:
        parts.append(f"{state.day_remaining} free requests left today")
    if state.eta_s is not None and not state.finished:
        parts.append(f"ETA {int(state.eta_s) // 60}:{int(state.eta_s) % 60:02d}")
    return " · ".join(parts)


def strip_html(state: BatchProgress | None) -> str:
    """The stacked strip: one segment per outcome, widths in proportion, fixed total width."""
    segments = ""
    if state is not None and state.total:
        for name, count in counts(state).items():
            if count and name in COLOURS:
                share = 100 * count / state.total
                segments += (f'<div title="{count} {name}" style="width:{share:.3f}%;'
                             f'background:{COLOURS[name]}"></div>')
    return (f'<div class="orn-batch-bar" style="display:flex;width:{BAR_PX}px;min-width:{BAR_PX}px;'
            f'height:14px;border-radius:3px;overflow:hidden;background:{_EMPTY};'
            f'flex:none">{segments}</div>')


def label_html(state: BatchProgress | None) -> str:
    if state is None:
        return "starting…"
    text = html.escape(summary(state))
    if state.message:
        text += (f"<br><span style='color:#c88a00;white-space:normal'>"
                 f"{html.escape(state.message)}</span>")
    return text


class BatchProgressBar(widgets.HBox):
    """``[███░░] 20 answered · 1 failed · 9 not sent · of 30 rows · 38 left today · ETA 0:41``."""

    def __init__(self, **kwargs: Any) -> None:
        self.strip = widgets.HTML(value=strip_html(None),
                                  layout=widgets.Layout(flex="0 0 auto", width=f"{BAR_PX + 8}px",
                                                        margin="2px 8px 0 0"))
        self.label = widgets.HTML(value=label_html(None),
                                  layout=widgets.Layout(flex="1 1 auto", min_width="0"))
        self.state: BatchProgress | None = None
        kwargs.setdefault("layout", widgets.Layout(width="100%", align_items="flex-start"))
        super().__init__(children=[self.strip, self.label], **kwargs)

    def update(self, state: BatchProgress) -> None:
        self.state = state
        self.strip.value = strip_html(state)
        self.label.value = label_html(state)

    def __call__(self, state: BatchProgress) -> None:
        self.update(state)

    def __repr__(self) -> str:
        if self.state is None:
            return "BatchProgressBar(not started)"
        return f"BatchProgressBar({summary_counts(self.state)})"

    def html(self) -> str:
        """Strip and label as plain HTML (the fallback where widgets do not render)."""
        return (f'<div style="display:flex;align-items:flex-start;gap:8px">'
                f"{strip_html(self.state)}<div>{label_html(self.state)}</div></div>")

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = super()._repr_mimebundle_(**kwargs)
        if isinstance(bundle, dict):
            bundle["text/plain"] = repr(self)
            bundle["text/html"] = self.html()
        return bundle


def summary_counts(state: BatchProgress) -> str:
    """The counts only (no quota, no ETA): stable between runs, for the repr."""
    found = counts(state)
    parts = [f"{found['answered']}/{state.total} rows answered"]
    if state.resumed:
        parts.append(f"{state.resumed} from the ledger")
    parts += [f"{count} {name}" for name, count in found.items()
              if count and name in ("failed", "not sent")]
    return ", ".join(parts)


def batch_progress_bar() -> BatchProgressBar:
    """A new bar, already displayed in the current cell."""
    from IPython.display import display

    bar = BatchProgressBar()
    display(bar)
    return bar
