"""Provider preferences (the request's ``provider`` object): which endpoints may serve a model,
and in what order they are tried.

Filters: ``data_collection: "deny"`` / ``zdr`` (privacy), ``only`` / ``ignore`` (slugs),
``max_price`` (USD per million tokens; ``prompt`` and ``completion`` are checked, the other
keys are accepted and have nothing to exclude here). Order: ``sort`` ranks the endpoints
(``price``: cheapest prompt + completion, ``throughput``: most tokens/s, ``latency``: fastest;
ties keep the catalog order); without ``sort`` the catalog order holds, primary endpoint first
(the real default balances load by price; the sandbox stays deterministic). ``order`` puts the
named providers first, in that order; ``allow_fallbacks: false`` keeps only them (or, without
``order``, only the top endpoint). A slug names an endpoint by its full tag
(``deepinfra/turbo``), its base slug (``google-vertex`` matches every ``google-vertex/...``) or
its display name.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .catalog import Endpoint

__all__ = ["PARTITIONS", "SORTS", "ProviderPrefs", "affordable", "allowed", "is_down",
           "prefs_of", "price_detail", "private_ok", "ranked", "sort_key"]

SORTS = ("price", "throughput", "latency")
PARTITIONS = ("model", "none")


@dataclass(frozen=True)
class ProviderPrefs:
    """The parsed ``provider`` object of a chat request."""

    order: tuple[str, ...] = ()
    allow_fallbacks: bool = True
    only: frozenset[str] = frozenset()
    ignore: frozenset[str] = frozenset()
    deny_training: bool = False
    zdr: bool = False
    sort: str | None = None
    partition: str = "model"  # with ``models`` fallbacks: "none" ranks across models
    max_prompt: float | None = None  # USD per million tokens
    max_completion: float | None = None


def _slugs(value: Any) -> frozenset[str]:
    return frozenset(str(v).lower() for v in value) if isinstance(value, list) else frozenset()


def _order(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError("'provider.order' must be an array of provider slugs.")
    return tuple(v.lower() for v in value)


def _sort(value: Any) -> tuple[str | None, str]:
    by, partition = (value.get("by"), value.get("partition", "model")) \
        if isinstance(value, Mapping) else (value, "model")
    if by is not None and by not in SORTS:
        raise ValueError(f"'provider.sort' must be one of {', '.join(SORTS)} "
                         "(or {\"by\": ..., \"partition\": \"model\"|\"none\"}).")
    if partition not in PARTITIONS:
        raise ValueError("'provider.sort.partition' must be \"model\" or \"none\".")
    return by, partition


def _price(limits: Mapping[str, Any], name: str) -> float | None:
    value = limits.get(name)
    if value is None:
        return None
    try:
        price = float(value)
    except (TypeError, ValueError):
        price = -1.0
    if isinstance(value, bool) or price < 0:
        raise ValueError(f"'provider.max_price.{name}' must be a non-negative number "
                         "(USD per million tokens).")
    return price


def prefs_of(raw: Any) -> ProviderPrefs:
    """Parse a request's ``provider`` object; ValueError names a malformed field."""
    if not isinstance(raw, Mapping):
        return ProviderPrefs()
    fallbacks = raw.get("allow_fallbacks", True)
    if not isinstance(fallbacks, bool):
        raise ValueError("'provider.allow_fallbacks' must be a boolean.")
    limits = raw.get("max_price") or {}
    if not isinstance(limits, Mapping):
        raise ValueError("'provider.max_price' must be an object.")
    by, partition = _sort(raw.get("sort"))
    return ProviderPrefs(
        order=_order(raw.get("order")), allow_fallbacks=fallbacks,
        only=_slugs(raw.get("only")), ignore=_slugs(raw.get("ignore")),
        deny_training=raw.get("data_collection") == "deny", zdr=raw.get("zdr") is True,
        sort=by, partition=partition,
        max_prompt=_price(limits, "prompt"), max_completion=_price(limits, "completion"))


def private_ok(ep: Endpoint, prefs: ProviderPrefs) -> bool:
    """``data_collection: deny`` and ``zdr`` allow this endpoint."""
    return not (prefs.deny_training and ep.data_policy == "trains") and (ep.zdr or not prefs.zdr)


def allowed(ep: Endpoint, prefs: ProviderPrefs) -> bool:
    """``only`` and ``ignore`` allow this endpoint."""
    if prefs.only and not any(ep.matches(s) for s in prefs.only):
        return False
    return not any(ep.matches(s) for s in prefs.ignore)


def affordable(ep: Endpoint, prefs: ProviderPrefs) -> bool:
    """The endpoint's prices are within ``max_price`` (a tiny tolerance for float rounding)."""
    prompt, completion = ep.per_million()
    return all(limit is None or price <= limit + 1e-9 for price, limit in
               ((prompt, prefs.max_prompt), (completion, prefs.max_completion)))


def sort_key(ep: Endpoint, by: str | None) -> float:
    """Smaller is better for ``provider.sort`` ``by``."""
    if by == "price":
        return sum(ep.per_million())
    if by == "throughput":
        return -ep.throughput
    if by == "latency":
        return float(ep.latency_ms)
    return 0.0


def ranked(eps: Iterable[Endpoint], prefs: ProviderPrefs) -> list[Endpoint]:
    """Endpoints in the order they are tried (``sort``, then ``order``, ``allow_fallbacks``)."""
    by = sorted(eps, key=lambda e: sort_key(e, prefs.sort))  # stable: ties keep catalog order
    if prefs.order:
        first = list(dict.fromkeys(e for slug in prefs.order for e in by if e.matches(slug)))
    else:
        first = by[:1]
    rest = [e for e in by if e not in first]
    return first + rest if prefs.allow_fallbacks else first


def is_down(ep: Endpoint, down: Collection[str]) -> bool:
    """True if a slug in ``down`` names this endpoint (a simulated provider outage)."""
    return any(ep.matches(slug) for slug in down)


def price_detail(prefs: ProviderPrefs, eps: Iterable[Endpoint]) -> str:
    """Say what ``max_price`` asked for and what the cheapest endpoint costs (USD/M tokens)."""
    asked = ", ".join(f"{name} <= {limit:g}" for name, limit in
                      (("prompt", prefs.max_prompt), ("completion", prefs.max_completion))
                      if limit is not None)
    cheapest = min(eps, key=lambda e: sum(e.per_million()))
    prompt, completion = cheapest.per_million()
    return (f"max_price {asked} USD per million tokens; the cheapest endpoint costs "
            f"prompt {prompt:g}, completion {completion:g}")
