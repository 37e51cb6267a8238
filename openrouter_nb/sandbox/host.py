"""What serving a chat request needs from the sandbox around it: :class:`ChatHost`.

``chat.py`` and ``render.py`` are written against this protocol, never against ``app.py``;
:class:`~.app.Sandbox` implements it. So the dependency runs one way (``app`` imports
``chat``), and each side can be read, and tested, alone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from .pacing import SpeedSettings
from .quota import QuotaEngine
from .response import RecordedRequest

__all__ = ["ChatHost"]

T = TypeVar("T")


class ChatHost(Protocol):
    """The settings, shared state and services a chat request uses."""

    seed: int
    rpm: int
    rpd: int
    window_s: float
    high_balance: bool
    quota: QuotaEngine
    down_providers: frozenset[str]
    natural_faults: bool
    processing_comments: bool
    usage_in_last_delta: bool
    leading_whitespace: bool
    split_frames: bool
    clock: Callable[[], float]

    @property
    def speed_settings(self) -> SpeedSettings: ...

    def sleep(self, seconds: float) -> None: ...

    def user_id(self, key: str) -> str: ...

    def hang_s(self, headers: Mapping[str, str]) -> float: ...

    def new_generation_id(self) -> str: ...

    def attempt_seed(self, kind: str, model_id: str, body: Any) -> int: ...

    def next_queued_fault(self) -> str | None: ...

    def router_choice(self, pool: Sequence[T]) -> T: ...

    def store_generation(self, key: str, data: dict[str, Any]) -> None: ...

    def finish_record(self, rec: RecordedRequest) -> None: ...
