"""Side-by-side comparison results as a DataFrame (pandas imported only here, lazily)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .answer import Answer
from .api.errors import OpenRouterError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

COLUMNS = ["requested_model", "served_model", "provider", "status", "error_kind", "latency_s",
           "prompt_tokens", "completion_tokens", "attempts", "validated", "text"]


def compare_row(model: str, result: Answer | OpenRouterError) -> dict[str, Any]:
    """One row for one model: its answer, or the error it ended with."""
    if isinstance(result, OpenRouterError):
        return {"requested_model": model, "served_model": None, "provider": result.provider,
                "status": "error", "error_kind": result.kind, "latency_s": None,
                "prompt_tokens": None, "completion_tokens": None, "attempts": result.attempts,
                "validated": None, "text": result.message}
    return {"requested_model": model, "served_model": result.model, "provider": result.provider,
            "status": "ok", "error_kind": None, "latency_s": round(result.latency_s, 3),
            "prompt_tokens": result.usage.get("prompt_tokens"),
            "completion_tokens": result.usage.get("completion_tokens"),
            "attempts": result.attempts, "validated": result.validated, "text": result.text}


def compare_frame(models: Sequence[str], results: Sequence[Answer | OpenRouterError]
                  ) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame([compare_row(m, r) for m, r in zip(models, results, strict=True)],
                        columns=COLUMNS)
