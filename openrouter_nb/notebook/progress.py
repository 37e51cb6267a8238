"""A progress bar for ``orn.batch``: rows done / total, requests left today, ETA.

A thin ipywidgets adapter over :class:`openrouter_nb.batching.BatchProgress`. It only sets
traits, so it may be fed from any thread. Its repr (the ``text/plain`` nbval compares) holds
the row counts and nothing that depends on timing.
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as widgets

from ..batching import BatchProgress


class BatchProgressBar(widgets.HBox):
    """``[#####-----] 12/30 rows · 3 from the ledger · 38 left today · ETA 0:41``."""

    def __init__(self, **kwargs: Any) -> None:
        self.bar = widgets.IntProgress(value=0, min=0, max=1, description="batch",
                                       bar_style="info")
        self.label = widgets.HTML(value="starting…")
        self.state: BatchProgress | None = None
        super().__init__(children=[self.bar, self.label], **kwargs)

    def update(self, state: BatchProgress) -> None:
        self.state = state
        self.bar.max = max(1, state.total)
        self.bar.value = state.done
        parts = [f"{state.done}/{state.total} rows"]
        if state.resumed:
            parts.append(f"{state.resumed} from the ledger")
        if state.failed:
            parts.append(f"{state.failed} failed")
        if state.day_remaining is not None:
            parts.append(f"{state.day_remaining} free requests left today")
        if state.eta_s is not None and not state.finished:
            parts.append(f"ETA {int(state.eta_s) // 60}:{int(state.eta_s) % 60:02d}")
        text = html.escape(" · ".join(parts))
        if state.message:
            self.bar.bar_style = "warning"
            text += f"<br><span style='color:#a15c00'>{html.escape(state.message)}</span>"
        elif state.finished:
            self.bar.bar_style = "danger" if state.failed else "success"
        self.label.value = text

    def __call__(self, state: BatchProgress) -> None:
        self.update(state)

    def __repr__(self) -> str:
        if self.state is None:
            return "BatchProgressBar(not started)"
        extra = f", {self.state.resumed} from the ledger" if self.state.resumed else ""
        return f"BatchProgressBar({self.state.done}/{self.state.total} rows{extra})"

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = super()._repr_mimebundle_(**kwargs)
        if isinstance(bundle, dict):
            bundle["text/plain"] = repr(self)
        return bundle


def batch_progress_bar() -> BatchProgressBar:
    """A new bar, already displayed in the current cell."""
    from IPython.display import display

    bar = BatchProgressBar()
    display(bar)
    return bar
