"""What the logged free calls would cost on a paid route.

Tokens come from the ledger's successful attempts; prices from the catalog (USD per token,
as ``/models`` lists them). A ``:free`` id is priced at its paid twin (same
``canonical_slug``). Failed attempts are left out: on a paid route most of them would not
have been billed, so the figure is a floor for retries, not a ceiling.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .catalog import Catalog, ModelInfo

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd


@dataclass(frozen=True)
class CallCost:
    call_id: str
    served_model: str | None
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float


@dataclass(frozen=True)
class CostEstimate:
    """Per-call and total cost of the logged calls at ``model``'s prices."""

    model: str
    priced_as: str  # the catalog entry whose prices were used
    prompt_price: float  # USD per token
    completion_price: float
    calls: tuple[CallCost, ...]
    note: str = ""

    @property
    def total_usd(self) -> float:
        return sum(c.cost_usd for c in self.calls)

    @property
    def per_call_usd(self) -> float:
        return self.total_usd / len(self.calls) if self.calls else 0.0

    @property
    def per_1000_calls_usd(self) -> float:
        return self.per_call_usd * 1000

    def frame(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame([c.__dict__ for c in self.calls],
                            columns=["call_id", "served_model", "prompt_tokens",
                                     "completion_tokens", "cost_usd"])

    def summary(self) -> str:
        prices = (f"${self.prompt_price * 1e6:.4g}/M prompt, "
                  f"${self.completion_price * 1e6:.4g}/M completion tokens")
        lines = [f"{len(self.calls)} logged calls priced as {self.priced_as} ({prices}):",
                 f"  total ${self.total_usd:.6f}, ${self.per_call_usd:.6f} per call, "
                 f"${self.per_1000_calls_usd:.4f} per 1,000 calls"]
        if self.note:
            lines.append(f"  {self.note}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def paid_prices(model: str, catalog: Catalog) -> tuple[ModelInfo, str]:
    """The catalog entry to price ``model`` with, and a note when it is not ``model`` itself."""
    info = catalog.get(model)
    if info is None:
        raise KeyError(f"{model!r} is not in the model catalog; list paid models with "
                       "orn.models(free=False).")
    if info.free:
        twin = catalog.paid_twin(model)
        if twin is None:
            raise KeyError(f"{model!r} is free and has no paid twin in the catalog to price it "
                           "with; name a paid model id.")
        return twin, f"{model} is free; priced at its paid twin {twin.id}."
    if info.prompt_price is None or info.completion_price is None or info.prompt_price < 0:
        raise KeyError(f"{model!r} has no fixed per-token price (a router?); name a model.")
    return info, ""


def estimate_cost(model: str, rows: Iterable[Mapping[str, Any]], catalog: Catalog) -> CostEstimate:
    """Price every successful logged call in ``rows`` at ``model``'s catalog prices."""
    priced, note = paid_prices(model, catalog)
    prompt_price = priced.prompt_price or 0.0
    completion_price = priced.completion_price or 0.0
    calls = []
    for row in rows:
        if row.get("status") != "ok":
            continue
        prompt = int(row.get("prompt_tokens") or 0)
        completion = int(row.get("completion_tokens") or 0)
        calls.append(CallCost(str(row.get("call_id")), row.get("served_model"), prompt,
                              completion, prompt * prompt_price + completion * completion_price))
    return CostEstimate(model=model, priced_as=priced.id, prompt_price=prompt_price,
                        completion_price=completion_price, calls=tuple(calls), note=note)
