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
        answered = result.partial_text and result.model  # e.g. an answer that broke the schema
        return {"requested_model": model, "served_model": result.model if answered else None,
                "provider": result.provider, "status": "error", "error_kind": result.kind,
                "latency_s": None, "prompt_tokens": None, "completion_tokens": None,
                "attempts": result.attempts,
                "validated": False if result.kind == "invalid_output" else None,
                "text": result.message}
    return {"requested_model": model, "served_model": result.model, "provider": result.provider,
            "status": "ok", "error_kind": None, "latency_s": round(result.latency_s, 3),
            "prompt_tokens": result.usage.get("prompt_tokens"),
            "completion_tokens": result.usage.get("completion_tokens"),
            "attempts": result.attempts, "validated": result.validated, "text": result.text}


def compare_frame(models: Sequence[str], results: Sequence[Answer | OpenRouterError]
                  ) -> pd.DataFrame:
    import pandas as pd

    frame = pd.DataFrame([compare_row(m, r) for m, r in zip(models, results, strict=True)],
                         columns=COLUMNS)
    for name in ("prompt_tokens", "completion_tokens", "attempts"):
        frame[name] = frame[name].astype("Int64")  # 12, not 12.0, beside an error row
    frame["validated"] = frame["validated"].astype("boolean")
    return frame
