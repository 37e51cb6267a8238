"""The model catalog: ``GET /models``, cached on disk, with free detection and capabilities.

Free means a ``:free`` id, the ``openrouter/free`` router, or a prompt *and* completion
price of exactly "0" (routers priced "-1" are not free). Capabilities come from
``supported_parameters`` (tools, structured outputs) and ``architecture.input_modalities``
(vision). A refresh reports which free models appeared and disappeared.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

FREE_ROUTER = "openrouter/free"
DEFAULT_MAX_AGE_S = 6 * 3600.0


def _price(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def is_free_entry(entry: dict[str, Any]) -> bool:
    """Free by id, or by both prices being exactly zero (``-1`` marks a router, not free)."""
    model_id = str(entry.get("id", ""))
    if model_id.endswith(":free") or model_id == FREE_ROUTER:
        return True
    pricing = entry.get("pricing") or {}
    prompt, completion = _price(pricing.get("prompt")), _price(pricing.get("completion"))
    return prompt == 0.0 and completion == 0.0


@dataclass(frozen=True)
class ModelInfo:
    """One catalog entry, with the fields the toolkit filters on."""

    id: str
    name: str
    canonical_slug: str | None
    context_length: int | None
    prompt_price: float | None  # USD per token
    completion_price: float | None
    free: bool
    vision: bool
    tools: bool
    structured: bool
    reasoning: bool = False  # takes the ``reasoning`` parameter
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, entry: dict[str, Any]) -> ModelInfo:
        params = set(entry.get("supported_parameters") or [])
        modalities = set((entry.get("architecture") or {}).get("input_modalities") or [])
        pricing = entry.get("pricing") or {}
        context = entry.get("context_length")
        return cls(
            id=str(entry.get("id", "")),
            name=str(entry.get("name") or entry.get("id", "")),
            canonical_slug=entry.get("canonical_slug"),
            context_length=int(context) if isinstance(context, (int, float)) else None,
            prompt_price=_price(pricing.get("prompt")),
            completion_price=_price(pricing.get("completion")),
            free=is_free_entry(entry),
            vision="image" in modalities,
            tools="tools" in params,
            structured=bool(params & {"response_format", "structured_outputs"}),
            reasoning=bool(params & {"reasoning", "include_reasoning"}),
            raw=entry,
        )

    @property
    def is_router(self) -> bool:
        # Routers are priced -1 (openrouter/auto) or are the free router; an
        # ``openrouter/...`` stealth model is a model like any other.
        return self.prompt_price == -1 or self.id == FREE_ROUTER


@dataclass(frozen=True)
class CatalogDiff:
    """Free models that appeared or disappeared since the previous refresh."""

    appeared: tuple[str, ...] = ()
    disappeared: tuple[str, ...] = ()

    def __str__(self) -> str:
        if not (self.appeared or self.disappeared):
            return "No change in the free models since the last refresh."
        parts = []
        if self.appeared:
            parts.append("new free models: " + ", ".join(self.appeared))
        if self.disappeared:
            parts.append("gone: " + ", ".join(self.disappeared))
        return "; ".join(parts).capitalize() + "."


class Catalog:
    """``GET /models`` behind a JSON cache file ``{"fetched_at": epoch, "data": [...]}``."""

    def __init__(self, path: Path, fetch: Callable[[], list[dict[str, Any]]], *,
                 clock: Callable[[], float] = time.time,
                 max_age_s: float = DEFAULT_MAX_AGE_S) -> None:
        self.path = Path(path)
        self._fetch = fetch
        self._clock = clock
        self.max_age_s = max_age_s
        self._models: list[ModelInfo] | None = None
        self.fetched_at: float | None = None
        self.last_diff = CatalogDiff()

    def _read_cache(self) -> tuple[float, list[dict[str, Any]]] | None:
        try:
            cached = json.loads(self.path.read_text())
            return float(cached["fetched_at"]), list(cached["data"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _write_cache(self, data: list[dict[str, Any]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        payload = json.dumps({"fetched_at": self.fetched_at, "data": data})
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".models-", suffix=".json")
        with os.fdopen(fd, "w") as handle:
            handle.write(payload)
        os.replace(tmp, self.path)  # atomic: a reader never sees half a file

    def refresh(self) -> CatalogDiff:
        """Fetch ``/models`` now; remember which free models came and went."""
        before = self._read_cache()
        data = self._fetch()
        self.fetched_at = self._clock()
        self._write_cache(data)
        self._models = [ModelInfo.from_json(entry) for entry in data]
        if before is not None:
            old = {ModelInfo.from_json(e).id for e in before[1] if is_free_entry(e)}
            new = {m.id for m in self._models if m.free}
            self.last_diff = CatalogDiff(tuple(sorted(new - old)), tuple(sorted(old - new)))
        return self.last_diff

    def models(self, *, refresh: bool = False) -> list[ModelInfo]:
        """All models, from memory, the cache file if fresh, else the service."""
        if refresh:
            self.refresh()
        if self._models is None:
            cached = self._read_cache()
            if cached is not None and self._clock() - cached[0] < self.max_age_s:
                self.fetched_at = cached[0]
                self._models = [ModelInfo.from_json(entry) for entry in cached[1]]
            else:
                self.refresh()
        return list(self._models or [])

    def get(self, model_id: str) -> ModelInfo | None:
        return next((m for m in self.models() if m.id == model_id), None)

    def filter(self, *, free: bool | None = None, vision: bool | None = None,
               tools: bool | None = None, structured: bool | None = None,
               min_context: int | None = None) -> list[ModelInfo]:
        """Models matching every filter given (``None`` means "either")."""
        return filter_models(self.models(), free=free, vision=vision, tools=tools,
                             structured=structured, min_context=min_context)

    def paid_twin(self, model_id: str) -> ModelInfo | None:
        """The priced model sharing ``canonical_slug`` with a free one."""
        model = self.get(model_id)
        if model is None or not model.canonical_slug:
            return None
        return next((m for m in self.models() if m.canonical_slug == model.canonical_slug
                     and not m.free and not m.is_router), None)

    def alternatives(self, model_id: str, limit: int = 3) -> list[ModelInfo]:
        """Free models that can do at least what ``model_id`` could (for a 404 message)."""
        wanted = self.get(model_id)
        candidates = [m for m in self.models() if m.free and not m.is_router and m.id != model_id]
        if wanted is not None:
            candidates = [m for m in candidates
                          if (m.vision or not wanted.vision) and (m.tools or not wanted.tools)
                          and (m.structured or not wanted.structured)]
        # ``:free`` variants first: they share the free quota the user is already pacing;
        # zero-priced promotional models come after them.
        candidates.sort(key=lambda m: (not m.id.endswith(":free"), -(m.context_length or 0)))
        return candidates[:limit]

    def dataframe(self, **filters: Any) -> pd.DataFrame:
        return models_frame(self.filter(**filters), self)


def filter_models(models: Iterable[ModelInfo], *, free: bool | None = None,
                  vision: bool | None = None, tools: bool | None = None,
                  structured: bool | None = None, min_context: int | None = None
                  ) -> list[ModelInfo]:
    chosen = []
    for model in models:
        if free is not None and model.free != free:
            continue
        if vision is not None and model.vision != vision:
            continue
        if tools is not None and model.tools != tools:
            continue
        if structured is not None and model.structured != structured:
            continue
        if min_context is not None and (model.context_length or 0) < min_context:
            continue
        chosen.append(model)
    return chosen


def models_frame(models: Iterable[ModelInfo], catalog: Catalog | None = None) -> pd.DataFrame:
    """A DataFrame of models with capabilities and the paid twin's price per million tokens."""
    import pandas as pd

    rows = []
    for model in models:
        twin = catalog.paid_twin(model.id) if catalog is not None and model.free else None
        rows.append({
            "id": model.id, "name": model.name, "context_length": model.context_length,
            "free": model.free, "vision": model.vision, "tools": model.tools,
            "structured": model.structured,
            "paid_twin": twin.id if twin else None,
            "paid_prompt_per_m": (twin.prompt_price or 0) * 1e6 if twin else None,
            "paid_completion_per_m": (twin.completion_price or 0) * 1e6 if twin else None,
        })
    columns = ["id", "name", "context_length", "free", "vision", "tools", "structured",
               "paid_twin", "paid_prompt_per_m", "paid_completion_per_m"]
    return pd.DataFrame(rows, columns=columns)
