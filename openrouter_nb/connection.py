"""Where a session's requests go: the in-process sandbox, a replay cassette or the network
(recorded when asked), with the key sent and the rates that apply."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from . import config
from .options import SessionConfig
from .speed import default_speed

__all__ = ["Connection", "connect"]


@dataclass
class Connection:
    """Where a session's requests go: the transport, the key it sends, and the mode."""

    transport: httpx.BaseTransport | None
    key: str | None
    mode: str
    sandbox: Any = None
    rates: tuple[int | None, int | None, float | None] = (None, None, None)


def connect(cfg: SessionConfig, settings: config.Settings,
             transport: httpx.BaseTransport | None, clock: Callable[[], float]) -> Connection:
    """The sandbox, a replay cassette or the network, recorded when asked."""
    replay = cfg.replay or (os.environ.get("OPENROUTER_NB_REPLAY") or None)
    rates = (cfg.rpm, cfg.rpd, cfg.window_s)
    link = Connection(transport, settings.api_key, "sandbox" if settings.sandbox else "live")
    if settings.sandbox and transport is None and (not replay or cfg.replay_fallback):
        from .sandbox import Sandbox, SandboxTransport, sandbox_key

        options = {"clock": clock, "speed": default_speed(), **(cfg.sandbox_options or {})}
        link.sandbox = Sandbox(**options)
        link.transport, link.key = SandboxTransport(link.sandbox), sandbox_key()
        rates = (cfg.rpm or options.get("rpm"), cfg.rpd or options.get("rpd"),
                 cfg.window_s or options.get("window_s"))
    if replay:
        from .api.cassette import ReplayTransport

        link.transport = ReplayTransport(replay, fallback=link.transport
                                         if cfg.replay_fallback else None)
        link.mode = "replay"
    if cfg.record:
        from .api.cassette import RecordingTransport

        link.transport = RecordingTransport(link.transport or httpx.HTTPTransport(), cfg.record)
    link.rates = rates
    return link
