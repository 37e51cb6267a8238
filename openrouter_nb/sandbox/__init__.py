"""Offline OpenRouter emulator: the same quota, routing, error shapes and SSE as the real service.

Use it in-process as an httpx transport (``httpx.Client(transport=SandboxTransport())``) or as a
real loopback server (``SandboxServer`` / ``python -m openrouter_nb.sandbox``). It shares no code
with the client's parsing, so each checks the other.
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
