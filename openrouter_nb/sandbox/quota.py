"""Free-model quota engine: a sliding per-minute window and a UTC-day counter, per API key.

Counting rules (the real service documents only "failed attempts count"; the rest is our choice):

* Every chat request that names a free model (``:free`` ids, ``openrouter/free``) and gets past
  request validation is an *attempt*. An admitted attempt counts in the minute window **and**
  the daily counter, whatever happens next (faults, provider errors, broken output).
* A request rejected by the quota itself (429 ``free-models-per-min`` / ``-per-day``) still counts
  in the **minute window** (hammering keeps you locked out). A per-minute rejection also counts
  in the daily counter (failed attempts count); a per-day rejection does not, so ``used`` never
  exceeds ``limit``. Set ``count_rejected=False`` to count neither.
* An injected ``rate_limit_day`` fault counts like the rejection it imitates: not in the daily
  counter. (The client's ledger counts the same way, so the two agree.)
* One ``models`` fallback request counts once, however many models it tries.
* Malformed requests (400/401) never reach the limiter and do not count.

Continuing a day: :meth:`QuotaEngine.seed` starts a key's counters from attempts made before
this engine existed (an in-process sandbox is seeded from the ledger's sandbox rows, so a new
kernel does not start the day from zero). The seeded count never exceeds the daily limit.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["DAY_S", "QuotaDecision", "QuotaEngine", "next_utc_midnight"]

DAY_S = 86400.0


def next_utc_midnight(now: float) -> float:
    """Epoch seconds of the next 00:00 UTC after ``now``."""
    return (now // DAY_S + 1) * DAY_S


@dataclass
class _KeyState:
    window: list[float] = field(default_factory=list)  # attempt times, ascending
    day: int = -1
    used: int = 0


@dataclass(frozen=True)
class QuotaDecision:
    """Outcome of :meth:`QuotaEngine.attempt`: ``kind`` is None when admitted."""

    kind: str | None  # None, "minute" or "day"
    limit: int
    reset_ms: int  # epoch milliseconds
    used_today: int

    @property
    def allowed(self) -> bool:
        return self.kind is None


class QuotaEngine:
    """Per-key free-model limits with an injectable clock. Thread-safe."""

    def __init__(self, *, rpm: int = 20, rpd: int = 50, window_s: float = 60.0,
                 clock: Callable[[], float] = time.time, count_rejected: bool = True,
                 high_balance: bool = False) -> None:
        self.rpm = rpm
        self.rpd = rpd
        self.window_s = window_s
        self.clock = clock
        self.count_rejected = count_rejected
        self.high_balance = high_balance  # the 1000/day tier (credits purchased >= 10)
        self._keys: dict[str, _KeyState] = {}
        self._lock = threading.Lock()

    def _state(self, key: str, now: float) -> _KeyState:
        st = self._keys.setdefault(key, _KeyState())
        day = int(now // DAY_S)
        if st.day != day:
            st.day, st.used = day, 0
        cutoff = now - self.window_s
        drop = bisect_right(st.window, cutoff)
        if drop:
            del st.window[:drop]
        return st

    def _minute_reset(self, st: _KeyState) -> float:
        # The window admits again once fewer than rpm attempts remain in it.
        idx = max(0, len(st.window) - self.rpm)
        return st.window[idx] + self.window_s

    def attempt(self, key: str) -> QuotaDecision:
        """Register one free-model attempt for ``key`` and say whether it is admitted."""
        with self._lock:
            now = self.clock()
            st = self._state(key, now)
            if st.used >= self.rpd:
                if self.count_rejected:
                    st.window.append(now)
                return QuotaDecision("day", self.rpd, int(next_utc_midnight(now) * 1000),
                                     st.used)
            if len(st.window) >= self.rpm:
                reset = self._minute_reset(st)
                if self.count_rejected:
                    st.window.append(now)
                    st.used += 1  # below rpd here: used never exceeds the limit
                return QuotaDecision("minute", self.rpm, int(reset * 1000), st.used)
            st.window.append(now)
            st.used += 1
            return QuotaDecision(None, self.rpd, int(next_utc_midnight(now) * 1000), st.used)

    def seed(self, key: str, *, used_today: int, recent: list[float] | None = None) -> None:
        """Start ``key``'s day at ``used_today`` attempts (at most the limit) and its minute
        window with the attempt times ``recent`` (those inside the window are kept)."""
        with self._lock:
            now = self.clock()
            st = self._state(key, now)
            st.used = max(st.used, min(self.rpd, max(0, int(used_today))))
            cutoff = now - self.window_s
            st.window = sorted([*st.window, *(t for t in recent or () if cutoff < t <= now)])

    def uncount_day(self, key: str) -> None:
        """Take one admitted attempt off ``key``'s daily count (an injected per-day 429)."""
        with self._lock:
            st = self._state(key, self.clock())
            st.used = max(0, st.used - 1)

    def daily(self, key: str) -> dict[str, int]:
        """``free_model_daily_requests`` for ``/key``: used, limit, remaining (UTC day)."""
        with self._lock:
            st = self._state(key, self.clock())
            return {"used": st.used, "limit": self.rpd, "remaining": max(0, self.rpd - st.used)}

    def minute_remaining(self, key: str) -> int:
        """Attempts left in the current sliding window."""
        with self._lock:
            st = self._state(key, self.clock())
            return max(0, self.rpm - len(st.window))

    def reset(self, key: str | None = None) -> None:
        """Forget the counters of one key (or of every key)."""
        with self._lock:
            if key is None:
                self._keys.clear()
            else:
                self._keys.pop(key, None)
