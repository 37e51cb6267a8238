"""Offline OpenRouter emulator: the same quota, routing, error shapes and SSE as the real service.

Use it in-process as an httpx transport (``httpx.Client(transport=SandboxTransport())``) or as a
real loopback server (``SandboxServer`` / ``python -m openrouter_nb.sandbox``). It shares no code
with the client's parsing, so each checks the other.

What it emulates, module by module: ``catalog`` (fixture models, free and paid, some reasoning),
``quota`` (the free-model limits), ``routing`` and ``providers`` (the routers, fallbacks and
provider preferences), ``faults`` (injected errors, ``X-Sandbox-Fault``), ``history`` (messages
and conversation turns: from turn 2 an answer quotes the previous question), ``reasoning``
(effort, ``exclude``, ``mandatory``, ``max_tokens`` exhaustion), ``compose`` and ``render``
(one answer, as JSON or SSE), ``chat`` (the chat endpoint), ``app`` (:class:`Sandbox`).

Speed: ``Sandbox(speed="instant")`` (the default: no waiting, deterministic, for tests and
nbval) or ``speed="realistic"`` (each model's first-token delay and tokens/s from the catalog,
streamed chunk by chunk); also ``SandboxTransport(speed=...)``, ``SandboxServer(speed=...)``
and ``python -m openrouter_nb.sandbox --speed realistic``. Every wait goes through the
injectable ``sleep``, so tests assert exact timings without waiting.
"""

from .app import Sandbox, sandbox_key
from .catalog import CATALOG, CatalogModel
from .faults import FAULTS
from .quota import QuotaEngine
from .response import RecordedRequest, SandboxResponse
from .server import SandboxServer
from .transport import SandboxTransport

__all__ = [
    "CATALOG",
    "CatalogModel",
    "FAULTS",
    "QuotaEngine",
    "RecordedRequest",
    "Sandbox",
    "SandboxResponse",
    "SandboxServer",
    "SandboxTransport",
    "sandbox_key",
]
