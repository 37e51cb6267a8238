"""How fast the sandbox answers: a first-token delay, then a delay per generated token.

Speeds (``Sandbox(speed=...)``, the request header ``X-Sandbox-Speed``, the CLI ``--speed``):

* ``"instant"`` (the default): no waiting at all; what tests and nbval want.
* ``"realistic"``: the serving endpoint's figures from the fixture catalog, the same ones
  ``/models/{id}/endpoints`` reports: its ``latency_ms`` before the first token, then one token
  every ``1 / throughput`` seconds. Reasoning tokens take time too, shown or not. So that a
  workshop never sits through the slowest fixtures, the first-token delay is kept within
  0.3-1.5 s and the speed at or above 30 tokens/s (fast endpoints stay fast).

A fixed latency overrides the speed: the request header ``X-Sandbox-Latency-Ms``, then
``Sandbox(latency_ms=...)``, then ``model_latency`` (each model's typical latency); the total is
spread as 40 % before the first token and 60 % over the tokens. A non-streamed answer waits the
whole :attr:`Pace.total_s` at once; a stream waits before each chunk.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .catalog import CatalogModel

__all__ = ["INSTANT", "REALISTIC", "SPEEDS", "Pace", "SpeedSettings", "check_speed", "pace_for",
           "realistic"]

INSTANT = "instant"
REALISTIC = "realistic"
SPEEDS = (INSTANT, REALISTIC)
FIRST_TOKEN_S = (0.3, 1.5)  # realistic first-token delay bounds
MIN_TOKENS_PER_S = 30.0


def check_speed(speed: str) -> str:
    """``speed`` if it is a known speed, else ValueError naming the known ones."""
    if speed not in SPEEDS:
        raise ValueError(f"unknown sandbox speed {speed!r}; known: {', '.join(SPEEDS)}")
    return speed


@dataclass(frozen=True)
class Pace:
    """Delays of one answer of ``tokens`` generated tokens (reasoning included)."""

    first_s: float = 0.0  # before the first token
    per_token_s: float = 0.0
    tokens: int = 0
    fixed_s: float | None = None  # a fixed total latency, when one was set

    @property
    def total_s(self) -> float:
        """How long the whole answer takes (what a non-streamed answer waits)."""
        if self.fixed_s is not None:
            return self.fixed_s
        return self.first_s + self.tokens * self.per_token_s


@dataclass(frozen=True)
class SpeedSettings:
    """The sandbox-wide pacing settings (request headers may override them)."""

    speed: str = INSTANT
    latency_ms: int | None = None
    model_latency: bool = False


def _fixed_s(settings: SpeedSettings, headers: Mapping[str, str],
             model: CatalogModel) -> float | None:
    if "x-sandbox-latency-ms" in headers:
        return max(0.0, float(headers["x-sandbox-latency-ms"])) / 1000
    if "x-sandbox-speed" in headers:
        return None
    if settings.latency_ms is not None:
        return settings.latency_ms / 1000
    return model.latency_ms / 1000 if settings.model_latency else None


def pace_for(settings: SpeedSettings, headers: Mapping[str, str], model: CatalogModel,
             tokens: int) -> Pace:
    """The pace of an answer of ``tokens`` tokens by ``model`` (as served by its endpoint).

    ``headers`` has lower-case names; an unknown ``X-Sandbox-Speed`` raises ValueError.
    """
    fixed = _fixed_s(settings, headers, model)
    if fixed is not None:
        return Pace(0.4 * fixed, 0.6 * fixed / max(1, tokens), tokens, fixed)
    speed = check_speed(headers.get("x-sandbox-speed", settings.speed).strip().lower())
    if speed == INSTANT:
        return Pace(tokens=tokens)
    return Pace(*realistic(model), tokens)


def realistic(model: CatalogModel) -> tuple[float, float]:
    """(first-token delay, seconds per token) of ``model``'s serving endpoint at ``realistic``
    speed: its catalog latency and throughput, within the workshop bounds."""
    lo, hi = FIRST_TOKEN_S
    return min(hi, max(lo, model.latency_ms / 1000)), 1 / max(MIN_TOKENS_PER_S,
                                                             model.tokens_per_s)
