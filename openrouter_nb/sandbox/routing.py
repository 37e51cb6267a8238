"""Model resolution: validate the requested ids, work out what the request needs, pick a model.

``openrouter/free`` picks at random (a seeded ``random.Random`` the caller owns) among free
models that support the request's needs and pass its provider preferences; ``openrouter/auto``
does the same among paid models; ``~…-latest`` aliases resolve to their target.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .answers import count_images
from .catalog import AUTO_ROUTER, FREE_ROUTER, CatalogModel, by_id, free_models, paid_models
from .faults import DOCS_URL, privacy_404
from .response import SandboxResponse, error_response

__all__ = ["Needs", "RoutingError", "candidates", "needs_of", "resolve"]

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
    """Capabilities and privacy constraints a request imposes on the serving model."""

    vision: bool = False
    tools: bool = False
    structured: bool = False
    deny_training: bool = False
    zdr: bool = False
    only: frozenset[str] = frozenset()
    ignore: frozenset[str] = frozenset()


def _slugs(value: Any) -> frozenset[str]:
    return frozenset(str(v).lower() for v in value) if isinstance(value, list) else frozenset()


def needs_of(body: Mapping[str, Any]) -> Needs:
    """What the request body asks of a model (image parts, tools, response_format, provider)."""
    prefs = body.get("provider") if isinstance(body.get("provider"), Mapping) else {}
    rf = body.get("response_format")
    return Needs(
        vision=count_images(body.get("messages") or []) > 0,
        tools=bool(body.get("tools")),
        structured=isinstance(rf, Mapping) and rf.get("type") in ("json_schema", "json_object"),
        deny_training=prefs.get("data_collection") == "deny",
        zdr=prefs.get("zdr") is True,
        only=_slugs(prefs.get("only")),
        ignore=_slugs(prefs.get("ignore")),
    )


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


def _provider_ok(m: CatalogModel, needs: Needs) -> bool:
    names = {m.provider.lower(), m.provider_tag}
    if needs.only and not names & needs.only:
        return False
    return not names & needs.ignore


def _capable(m: CatalogModel, needs: Needs) -> bool:
    return ((m.vision or not needs.vision) and (m.tools or not needs.tools)
            and (m.structured or not needs.structured))


def _private_ok(m: CatalogModel, needs: Needs) -> bool:
    return not (needs.deny_training and m.data_policy == "trains") and (m.zdr or not needs.zdr)


def _no_endpoints(message: str, model_id: str, code: str = "no_endpoints") -> RoutingError:
    av = {"code": code, "retryable": False, "requested_models": [model_id], "docs_url": DOCS_URL}
    return RoutingError(error_response(404, message, availability=av), model_level=True)


def _check(m: CatalogModel, requested: str, needs: Needs, user_id: str) -> None:
    if needs.vision and not m.vision:
        raise _no_endpoints("No endpoints found that support image input", requested,
                            "constraint_filtered")
    if needs.tools and not m.tools:
        raise _no_endpoints("No endpoints found that support tool use. To learn more about "
                            "provider routing, visit: https://openrouter.ai/docs/provider-routing",
                            requested, "constraint_filtered")
    if not _private_ok(m, needs):
        raise RoutingError(privacy_404(requested, user_id, zdr=needs.zdr and not m.zdr),
                           model_level=True)
    if not _provider_ok(m, needs):
        raise _no_endpoints(f"No allowed providers are available for the selected model "
                            f"({requested}).", requested, "constraint_filtered")


def resolve(model_id: str, needs: Needs, rng: random.Random, user_id: str) -> CatalogModel:
    """The concrete model that serves ``model_id``; raises :class:`RoutingError` if none can."""
    entry = by_id(model_id)
    if entry is None:
        raise _bad_model(model_id)
    if entry.alias_target:
        target = by_id(entry.alias_target)
        assert target is not None, entry.alias_target
        entry = target
    if model_id in (FREE_ROUTER, AUTO_ROUTER):
        pool_all = list(free_models() if model_id == FREE_ROUTER else paid_models())
        pool = [m for m in pool_all if _capable(m, needs) and _provider_ok(m, needs)]
        if not pool:
            raise _no_endpoints(f"No endpoints found for {model_id} that support the "
                                "requested features.", model_id, "constraint_filtered")
        private = [m for m in pool if _private_ok(m, needs)]
        if not private:
            raise RoutingError(privacy_404(model_id, user_id, zdr=needs.zdr), model_level=True)
        return rng.choice(private)
    _check(entry, model_id, needs, user_id)
    return entry
