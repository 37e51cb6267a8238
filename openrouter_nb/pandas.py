"""``df.openrouter``: batches and cost estimates as a pandas accessor.

    import openrouter_nb.pandas  # registers the accessor, as ``import hvplot.pandas`` does

    labelled = reviews.openrouter.ask("Classify as positive or negative: {text}", out="label")
    orn.log().openrouter.estimate_cost("openai/gpt-4o-mini").total_usd

pandas registers accessors only by importing pandas, and ``import openrouter_nb`` stays free
of it (a notebook that never builds a frame should not pay for pandas), so the accessor is
opt-in through this module.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from . import batch, estimate_cost

ACCESSOR = "openrouter"


@pd.api.extensions.register_dataframe_accessor(ACCESSOR)
class OpenRouterAccessor:
    """``df.openrouter.ask(...)`` (see :func:`openrouter_nb.batch`) and
    ``ledger_frame.openrouter.estimate_cost(model)`` (see :func:`openrouter_nb.estimate_cost`)."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self._frame = frame

    def ask(self, prompt: str, *, model: str | None = None, out: str = "answer",
            schema: Any = None, progress: Any = "auto", concurrency: int | None = None,
            **options: Any) -> pd.DataFrame:
        """One request per row (``prompt`` uses ``{column}`` placeholders), several in flight,
        paced by the quota and resumable; returns a copy with ``out``, ``{out}_model`` and
        ``{out}_status``. ``concurrency`` caps the rows in flight (default: the minute limit on
        free models, 16 on paid ones)."""
        return batch(self._frame, prompt, model=model, out=out, schema=schema,
                     progress=progress, concurrency=concurrency, **options)

    def estimate_cost(self, model: str) -> Any:
        """Price these ledger rows (``orn.log()`` or a slice of it) at ``model``'s prices."""
        return estimate_cost(model, ledger=self._frame)


__all__ = ["ACCESSOR", "OpenRouterAccessor"]
