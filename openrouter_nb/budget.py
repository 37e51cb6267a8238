"""A session's request budget: at most ``limit`` requests, counted before each is sent."""

from __future__ import annotations

import threading

__all__ = ["Budget"]


class Budget:
    """How many requests a session (and the sessions derived from it) may still send.

    Shared, not copied, by a derived session (record, replay, sandbox on/off), so switching
    modes never resets what was spent. Thread-safe.
    """

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit
        self.used = 0
        self._lock = threading.Lock()

    def spend(self) -> bool:
        """Count one request; ``False`` (and nothing counted) when the budget is spent."""
        with self._lock:
            if self.limit is not None and self.used >= self.limit:
                return False
            self.used += 1
            return True

    def reset(self, limit: int | None) -> None:
        """A new limit, counting from zero (``%openrouter budget N``)."""
        with self._lock:
            self.limit, self.used = limit, 0

    @property
    def remaining(self) -> int | None:
        return None if self.limit is None else max(0, self.limit - self.used)

    def __repr__(self) -> str:
        return "Budget(off)" if self.limit is None else f"Budget({self.used}/{self.limit})"
