"""Model resolution: validate the requested ids, work out what the request needs, pick a model.

``openrouter/free`` picks at random (a seeded choice the caller owns) among free
models that support the request's needs and pass its provider preferences; ``openrouter/auto``
does the same among paid models; ``~…-latest`` aliases resolve to their target. The chosen
model's endpoints are then filtered and ordered by the provider preferences (``providers.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .catalog import (
    AUTO_ROUTER,
    FREE_ROUTER,
    CatalogModel,
    Endpoint,
    by_id,
    free_models,
    paid_models,
)
from .faults import DOCS_URL, privacy_404
from .history import count_images
from .providers import (
    ProviderPrefs,
    affordable,
    allowed,
    prefs_of,
    price_detail,
    private_ok,
    ranked,
    sort_key,
)
from .response import SandboxResponse, error_response

__all__ = ["Needs", "RoutingError", "candidates", "needs_of", "rank_key", "resolve"]

DEFAULT_MODEL = FREE_ROUTER  # when a request names no model (real service: account default)
MAX_MODELS = 3


class RoutingError(Exception):
    """A request-level or model-level refusal, carrying the real-shaped response."""

    def __init__(self, response: SandboxResponse, *, model_level: bool) -> None:
        super().__init__(response.body.decode(errors="replace"))
        self.response = response
        self.model_level = model_level  # True: a ``models`` fallback may try the next model


@dataclass(frozen=True)
class Needs:
    """Capabilities and provider preferences a request imposes on the serving endpoint."""

    vision: bool = False
    tools: bool = False
    structured: bool = False
    tool_name: str = ""  # the first tool's name (the 404 names it)
    provider: ProviderPrefs = field(default_factory=ProviderPrefs)


def needs_of(body: Mapping[str, Any]) -> Needs:
    """What the request body asks of a model (image parts, tools, response_format, provider).

    A malformed ``provider`` object raises a request-level :class:`RoutingError` (400).
    """
    rf = body.get("response_format")
    try:
        prefs = prefs_of(body.get("provider"))
    except ValueError as exc:
        raise RoutingError(error_response(400, str(exc)), model_level=False) from None
    return Needs(
        vision=count_images(body.get("messages") or []) > 0,
        tools=bool(body.get("tools")),
        tool_name=_first_tool(body.get("tools")),
        structured=isinstance(rf, Mapping) and rf.get("type") in ("json_schema", "json_object"),
        provider=prefs,
    )


def _first_tool(tools: Any) -> str:
    first = tools[0] if isinstance(tools, list) and tools else None
    fn = first.get("function") if isinstance(first, Mapping) else None
    return str(fn.get("name") or "") if isinstance(fn, Mapping) else ""


def _bad_model(model_id: str) -> RoutingError:
    av = {"code": "model_not_found", "retryable": False, "requested_models": [model_id],
          "docs_url": DOCS_URL}
    return RoutingError(error_response(400, f"{model_id} is not a valid model ID",
                                       availability=av), model_level=False)


def candidates(body: Mapping[str, Any]) -> list[str]:
    """Ordered model ids to try: ``model`` then the ``models`` fallbacks (validated)."""
    models = body.get("models")
    if models is not None:
        if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
            raise RoutingError(error_response(400, "'models' must be an array of model IDs."),
                               model_level=False)
        if len(models) > MAX_MODELS:
            raise RoutingError(error_response(400, "'models' array must have 3 items or fewer."),
                               model_level=False)
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise RoutingError(error_response(400, "'model' must be a string."), model_level=False)
    ids = ([model] if model else []) + [m for m in (models or []) if m != model]
    ids = ids or [DEFAULT_MODEL]
    for model_id in ids:
        if by_id(model_id) is None:
            raise _bad_model(model_id)
    return ids


def _capable(m: CatalogModel, needs: Needs) -> bool:
    return ((m.vision or not needs.vision) and (m.tools or not needs.tools)
            and (m.structured or not needs.structured))


def _no_endpoints(message: str, model_id: str, code: str = "no_endpoints",
                  **more: Any) -> RoutingError:
    av = {"code": code, "retryable": False, "requested_models": [model_id], **more,
          "docs_url": DOCS_URL}
    return RoutingError(error_response(404, message, availability=av), model_level=True)


def _not_allowed(model_id: str) -> RoutingError:
    return _no_endpoints(f"No allowed providers are available for the selected model "
                         f"({model_id}).", model_id, "constraint_filtered",
                         excluded_by=["allowed_providers"])


def _too_dear(model_id: str, prefs: ProviderPrefs, eps: Sequence[Endpoint]) -> RoutingError:
    detail = price_detail(prefs, eps)
    return _no_endpoints(f"No endpoints found for {model_id} within your price limits "
                         f"({detail}).", model_id, "constraint_filtered",
                         excluded_by=["max_price"],
                         constraint={"field": "provider.max_price", "detail": detail})


def _route(m: CatalogModel, prefs: ProviderPrefs) -> tuple[str | None, list[Endpoint]]:
    """The endpoints of ``m`` in try order, or the first filter that left none."""
    eps = [e for e in m.endpoints() if private_ok(e, prefs)]
    if not eps:
        return "privacy", []
    eps = [e for e in eps if allowed(e, prefs)]
    if not eps:
        return "providers", []
    cheap = [e for e in eps if affordable(e, prefs)]
    if not cheap:
        return "max_price", eps
    eps = ranked(cheap, prefs)
    return (None, eps) if eps else ("providers", [])


def _check(m: CatalogModel, requested: str, needs: Needs, user_id: str) -> list[Endpoint]:
    if needs.vision and not m.vision:
        raise _no_endpoints("No endpoints found that support image input", requested,
                            "constraint_filtered")
    if needs.tools and not m.tools:
        raise _no_endpoints(f'No endpoints found that support tool use. Try disabling '
                            f'"{needs.tool_name}". To learn more about provider routing, visit: '
                            "https://openrouter.ai/docs/guides/routing/provider-selection",
                            requested, "constraint_filtered")
    prefs = needs.provider
    failed, eps = _route(m, prefs)
    if failed == "privacy":
        zdr = prefs.zdr and not any(e.zdr for e in m.endpoints())
        raise RoutingError(privacy_404(requested, user_id, zdr=zdr), model_level=True)
    if failed == "max_price":
        raise _too_dear(requested, prefs, eps)
    if failed == "providers":
        raise _not_allowed(requested)
    return eps


Choose = Callable[[Sequence[CatalogModel]], CatalogModel]


def _pick(model_id: str, needs: Needs, choose: Choose, user_id: str) -> CatalogModel:
    """The router's pick: a random model among those the request's needs leave."""
    prefs = needs.provider
    pool_all = list(free_models() if model_id == FREE_ROUTER else paid_models())
    pool = [m for m in pool_all
            if _capable(m, needs) and any(allowed(e, prefs) for e in m.endpoints())]
    if not pool:
        raise _no_endpoints(f"No endpoints found for {model_id} that support the "
                            "requested features.", model_id, "constraint_filtered")
    private = [m for m in pool if any(private_ok(e, prefs) and allowed(e, prefs)
                                      for e in m.endpoints())]
    if not private:
        raise RoutingError(privacy_404(model_id, user_id, zdr=prefs.zdr), model_level=True)
    routes = {m.id: _route(m, prefs) for m in private}
    fine = [m for m in private if routes[m.id][0] is None]
    if not fine:
        dear = [e for failed, eps in routes.values() if failed == "max_price" for e in eps]
        if dear:
            raise _too_dear(model_id, prefs, dear)
        raise _not_allowed(model_id)
    return choose(fine)


def resolve(model_id: str, needs: Needs, choose: Choose,
            user_id: str) -> list[CatalogModel]:
    """The concrete model that serves ``model_id``, once per eligible endpoint in try order
    (see :meth:`CatalogModel.served_by`); raises :class:`RoutingError` if none can.

    ``choose`` makes the routers' random pick (e.g. a seeded ``random.Random().choice``)."""
    entry = by_id(model_id)
    if entry is None:
        raise _bad_model(model_id)
    if entry.alias_target:
        target = by_id(entry.alias_target)
        assert target is not None, entry.alias_target
        entry = target
    if model_id in (FREE_ROUTER, AUTO_ROUTER):
        entry = _pick(model_id, needs, choose, user_id)
    return [entry.served_by(e) for e in _check(entry, model_id, needs, user_id)]


def rank_key(routes: Sequence[CatalogModel], prefs: ProviderPrefs) -> float:
    """How good a model's first endpoint is under ``provider.sort`` (smaller is better)."""
    return sort_key(routes[0].primary, prefs.sort)
