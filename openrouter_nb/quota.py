"""Free-tier quota state and pacing for one account.

Three sources, combined: the ledger (every attempt this account's key made since UTC
midnight, across kernels), ``GET /key`` (``free_model_daily_requests``: authoritative but
cached for about a minute, and absent on older keys) and the ``X-RateLimit-*`` values of
429s. :class:`QuotaState` says which source each figure came from.

After a per-day 429 the tracker refuses locally until the reset, but first reads ``GET /key``
again (at most once a minute): if it reports requests left (credits bought since), the block
is lifted. Figures never show more used than the limit.

Pacing: before a request is sent, :meth:`QuotaTracker.acquire` waits for a free slot in
the sliding per-minute window instead of provoking a 429. The clock and the sleep are
injected, so tests and the sandbox can run in scaled or fake time. In a class that shares one
key, a :class:`SharedPacer` (the class database, :mod:`openrouter_nb.class_gate`) grants the
slots instead, for every kernel of the class at once.
"""

from __future__ import annotations

import bisect
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

from .api.errors import (
    DailyRateLimit,
    LedgerUnavailable,
    MinuteRateLimit,
    OpenRouterError,
    RateLimitInfo,
)
from .api.types import KeyInfo

FREE_RPM = 20
FREE_RPD = 50
FREE_RPD_WITH_CREDITS = 1000
DAY_CACHE_S = 2.0
WAIT_STEP_S = 1.0  # while waiting for a slot, listeners hear about it at least this often
KEY_RECHECK_S = 60.0  # a local per-day block asks GET /key again at most this often
CLASS_CACHE_S = 1.0  # a class's figures (from its database) are read at most this often


#: The UTC day last asked about, as (its midnight, the next midnight): every call asks for
#: the same day, so the datetime arithmetic runs once a day, not once per call.
_last_day: tuple[float, float] = (0.0, 0.0)


def utc_midnight_after(epoch: float) -> float:
    """The next 00:00 UTC after ``epoch`` (the daily reset)."""
    global _last_day
    start, end = _last_day
    if start <= epoch < end:
        return end
    day = datetime.fromtimestamp(epoch, tz=timezone.utc).date()
    end = datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp() + 86400.0
    _last_day = (end - 86400.0, end)
    return end


def utc_midnight_before(epoch: float) -> float:
    return utc_midnight_after(epoch) - 86400.0


def is_free_model(model: str | None) -> bool:
    return bool(model) and (str(model).endswith(":free") or model == "openrouter/free")


@dataclass(frozen=True)
class Slot:
    """A reserved place in the per-minute window (``stamp`` is None for unpaced models)."""

    stamp: float | None
    waited: float
    seq: int = 0  # this tracker's running number of reserved slots (0: unpaced)
    grant: Any = None  # the class database's grant, when a SharedPacer gave the slot


class SharedPacer(Protocol):
    """Slots granted for a whole class on one key (:class:`openrouter_nb.class_gate.ClassGate`)."""

    def acquire(self, *, free: bool, rpm: int, window_s: float, rpd: int | None,
                on_wait: Callable[[Any], None] | None = None) -> Any: ...

    def settle(self, grant: Any) -> None: ...

    def block(self, *, minute_until: float | None = None,
              day_until: float | None = None) -> None: ...

    def state(self, window_s: float) -> Any: ...


@dataclass(frozen=True)
class QuotaState:
    """A snapshot for displays: plain numbers, plus where each came from."""

    minute_used: int
    minute_limit: int
    minute_reset_at: float | None  # epoch when the next per-minute slot frees up
    day_used: int
    day_limit: int
    day_reset_at: float  # next 00:00 UTC
    now: float
    window_s: float = 60.0
    sources: dict[str, str] = field(default_factory=dict)
    note: str = ""
    waiting_s: float = 0.0  # >0 while a request waits for a slot
    day_blocked: bool = False
    last_model: str | None = None
    budget: int | None = None
    budget_used: int = 0
    queue_place: int | None = None  # in a class: this request's place in the class's queue
    queue_size: int | None = None

    @property
    def day_remaining(self) -> int:
        return 0 if self.day_blocked else max(0, self.day_limit - self.day_used)

    @property
    def minute_remaining(self) -> int:
        return max(0, self.minute_limit - self.minute_used)

    @property
    def budget_remaining(self) -> int | None:
        return None if self.budget is None else max(0, self.budget - self.budget_used)


class QuotaTracker:
    """Per-account quota: pacing for the minute window, counting for the day."""

    def __init__(
        self,
        *,
        rpm: int = FREE_RPM,
        rpd: int | None = None,
        window_s: float = 60.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        day_count: Callable[[float], int] | None = None,
        recent_sends: list[float] | None = None,
        refresh_key: Callable[[], object] | None = None,
    ) -> None:
        self.rpm = rpm
        self.rpd = rpd
        self.window_s = window_s
        self.margin_s = window_s / 200.0
        self.clock = clock
        self.sleep = sleep
        self._day_count = day_count  # ledger-backed count of attempts since a UTC midnight
        # (read at, since, count, slots reserved by then)
        self._day_cache: tuple[float, float, int, int] | None = None
        self._lock = threading.Lock()
        self._sent: deque[float] = deque(sorted(recent_sends or []))
        self._local_day: list[float] = []
        self._reserved = 0  # slots reserved so far: orders sends even when the clock ties
        self._in_flight: dict[int, float] = {}  # seq -> stamp, until the ledger row is written
        self._minute_blocked_until = 0.0
        self._day_blocked_until = 0.0
        self._key: KeyInfo | None = None
        self._key_at: float | None = None
        self._key_seq = 0  # slots reserved when /key was read (its figure predates later ones)
        self._refresh_key = refresh_key  # reads GET /key and calls note_key (the session's)
        self._key_tried_at: float | None = None
        self._limit_from_429: RateLimitInfo | None = None
        self._waiting_until = 0.0
        self.last_model: str | None = None
        self.budget: int | None = None
        self.budget_used = 0
        self._listeners: list[Callable[[QuotaState], None]] = []
        self._notify_lock = threading.RLock()
        #: A class's shared pacer (None: this tracker paces alone), and whether a call may go
        #: on pacing alone when the class database cannot be reached.
        self.shared: SharedPacer | None = None
        self.shared_fallback = False
        self._queue: tuple[int, int] | None = None
        self._class_cache: tuple[float, tuple[int, int, int] | None] | None = None
        self._fell_back = False

    # -- listeners (the meter) --------------------------------------------------------------
    def subscribe(self, listener: Callable[[QuotaState], None]) -> Callable[[], None]:
        """Call ``listener(state)`` after every change; returns an unsubscribe function."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def _notify(self) -> None:
        if not self._listeners:
            return
        # One at a time, snapshot and delivery together: a snapshot taken earlier is never
        # delivered after a later one (threads of a comparison settle at the same moment).
        with self._notify_lock:
            state = self.state()
            for listener in list(self._listeners):
                listener(state)

    # -- pacing ------------------------------------------------------------------------------
    def _prune(self, now: float) -> None:
        while self._sent and self._sent[0] <= now - self.window_s:
            self._sent.popleft()

    def acquire(self, model: str | None = None) -> Slot:
        """Wait until a request may be sent without a per-minute 429.

        Returns the reserved :class:`Slot` (``slot.waited`` says how long it waited); pass
        it to :meth:`settle` when the response is in. Raises ``DailyRateLimit`` without
        waiting when the daily quota is known to be spent. Paid models are not paced
        (OpenRouter does not cap them).
        """
        if self.shared is not None:
            try:
                return self._acquire_shared(self.shared, model)
            except LedgerUnavailable:
                if not self.shared_fallback:
                    raise
                self._say_fallback()
        if not is_free_model(model):
            return Slot(None, 0.0)
        self._recheck_day_block()
        waited = 0.0
        while True:
            with self._lock:
                now = self.clock()
                self.check_day(now)
                self._prune(now)
                free_at = self._minute_blocked_until
                if len(self._sent) >= self.rpm:
                    free_at = max(free_at, self._sent[0] + self.window_s + self.margin_s)
                if free_at <= now:
                    if self._local_day and self._local_day[0] < now - 86400.0:
                        self._local_day = [t for t in self._local_day if t >= now - 86400.0]
                    _insert_sorted(self._sent, now)
                    self._local_day.append(now)
                    self._reserved += 1
                    seq = self._reserved
                    self._in_flight[seq] = now
                    self._waiting_until = 0.0
                    break
                self._waiting_until = free_at
                wait = free_at - now
                if self._listeners:  # a cell or a meter shows a countdown: wake up for it
                    wait = min(wait, WAIT_STEP_S)
            self._notify()
            self.sleep(wait)
            waited += wait
        self._notify()
        return Slot(now, waited, seq)

    def _acquire_shared(self, shared: SharedPacer, model: str | None) -> Slot:
        """A slot from the class's pacer; this tracker only keeps the figures for displays."""
        free = is_free_model(model)
        if free:
            self._recheck_day_block()
            self.check_day()

        def waiting(where: Any) -> None:
            with self._lock:
                self._waiting_until = self.clock() + where.expected_s
                self._queue = (where.place, where.waiting)
            self._notify()

        grant = shared.acquire(free=free, rpm=self.rpm, window_s=self.window_s, rpd=self.rpd,
                               on_wait=waiting)
        with self._lock:
            self._waiting_until, self._queue = 0.0, None
            if not free:
                return Slot(None, grant.waited, grant=grant)
            now = self.clock()
            self._prune(now)
            _insert_sorted(self._sent, now)
            self._local_day.append(now)
            self._reserved += 1
            seq = self._reserved
            self._in_flight[seq] = now
        self._notify()
        return Slot(now, grant.waited, seq, grant=grant)

    def _say_fallback(self) -> None:
        if not self._fell_back:
            self._fell_back = True
            warnings.warn("The class database cannot be reached, so this notebook paces its "
                          "own requests for now (OPENROUTER_NB_LEDGER_FALLBACK=local); its "
                          "rows are kept locally and synced back when the database returns.",
                          RuntimeWarning, stacklevel=4)

    def settle(self, slot: Slot) -> None:
        """Re-stamp a used slot with the time its response arrived; call it once the
        attempt's ledger row is written.

        The server counts a request when it arrives, somewhere between our reservation
        and the response; using the later time means our window never frees a slot
        before the server's does.
        """
        if slot.grant is not None and slot.stamp is not None and self.shared is not None:
            self.shared.settle(slot.grant)
        if slot.stamp is None:
            return
        with self._lock:
            now = self.clock()
            self._in_flight.pop(slot.seq, None)
            cache = self._day_cache
            if cache is not None and slot.seq <= cache[3]:
                # In flight when the ledger was last counted (so counted as pending), its row
                # is written now: count again, or the figure would drop by one until then.
                self._day_cache = None
            sent = self._sent
            # The slot is nearly always among the newest stamps: look from the right, so a
            # busy window (a benchmark, a batch on paid limits) costs no O(n) scan and sort.
            for index in range(len(sent) - 1, -1, -1):
                if sent[index] == slot.stamp:
                    del sent[index]
                    break
            else:
                return  # already pruned
            _insert_sorted(sent, max(now, slot.stamp))

    def _recheck_day_block(self) -> None:
        """Before refusing for a per-day 429, read ``GET /key`` again (at most once every
        KEY_RECHECK_S): credits bought since then, or a day that turned out not to be spent,
        lift the local block (:meth:`note_key`)."""
        now = self.clock()
        if self._refresh_key is None or self._day_blocked_until <= now:
            return
        if self._key_tried_at is not None and 0 <= now - self._key_tried_at < KEY_RECHECK_S:
            return
        self._key_tried_at = now
        try:
            self._refresh_key()
        except OpenRouterError:
            pass  # /key unavailable: the block stands

    def check_day(self, now: float | None = None) -> None:
        """Raise ``DailyRateLimit`` if a per-day 429 said so and its reset has not come."""
        now = self.clock() if now is None else now
        if self._day_blocked_until > now:
            info = self._limit_from_429
            raise DailyRateLimit(
                "Daily free-model limit already reached; not sending. It resets at "
                f"{datetime.fromtimestamp(self._day_blocked_until, tz=timezone.utc):%H:%M} UTC.",
                rate_limit=info,
            )

    # -- feedback from responses -----------------------------------------------------------------
    def note_result(self, model: str | None) -> None:
        self.last_model = model or self.last_model
        self._notify()

    def note_error(self, error: OpenRouterError) -> None:
        """Learn from a 429: block the minute or the day until the reset it names."""
        info = error.rate_limit
        now = self.clock()
        with self._lock:
            if isinstance(error, MinuteRateLimit):
                reset = info.reset_epoch_s if info and info.reset_epoch_s else now + self.window_s
                self._minute_blocked_until = max(self._minute_blocked_until, reset)
                self._limit_from_429 = info or self._limit_from_429
            elif isinstance(error, DailyRateLimit) and error.http_status == 429:
                reset = (info.reset_epoch_s if info and info.reset_epoch_s
                         else utc_midnight_after(now))
                self._day_blocked_until = max(self._day_blocked_until, reset)
                self._limit_from_429 = info or self._limit_from_429
                if info and info.limit:
                    self.rpd = info.limit
                self._day_cache = None  # its slot is no used request: count from the ledger
        if self.shared is not None:  # the key is spent for the whole class, not only here
            if isinstance(error, MinuteRateLimit):
                self.shared.block(minute_until=self._minute_blocked_until)
            elif isinstance(error, DailyRateLimit) and error.http_status == 429:
                self.shared.block(day_until=self._day_blocked_until)
        self._notify()

    def note_key(self, info: KeyInfo) -> None:
        """Take ``GET /key`` figures (the tier's daily limit, the service's own count)."""
        with self._lock:
            self._key = info
            self._key_at = self.clock()
            self._key_seq = self._reserved
            if info.daily_limit:
                self.rpd = info.daily_limit
            if info.daily_remaining is not None and info.daily_remaining > 0:
                self._day_blocked_until = 0.0  # requests left after all (e.g. credits bought)
        self._notify()

    def note_budget(self, budget: int | None, used: int) -> None:
        self.budget, self.budget_used = budget, used
        self._notify()

    def _ledger_day(self, now: float, midnight: float, day_count: Callable[[float], int]) -> int:
        # The ledger (all kernels) is re-read at most every DAY_CACHE_S; in between, this
        # process's own sends are added, so a tight loop does not query SQLite per call.
        # A slot still in flight when the ledger was read is in neither figure: add it.
        # Sequence numbers, not stamps, say what came after the read: a clock that ticks
        # coarsely (or a test clock) can give a send and the read the same time.
        cache = self._day_cache
        if cache is None or cache[1] != midnight or not 0 <= now - cache[0] < DAY_CACHE_S:
            cache = self._day_cache = (now, midnight, day_count(midnight), self._reserved)
        after = self._reserved - cache[3]
        pending = sum(1 for seq, t in self._in_flight.items() if seq <= cache[3] and t >= midnight)
        return cache[2] + after + pending

    # -- snapshot ---------------------------------------------------------------------------------
    def day_remaining(self) -> int:
        """``state().day_remaining`` without building the whole snapshot (every answer has it)."""
        with self._lock:
            day_used, day_limit, blocked, _, _ = self._day(self.clock())
        return 0 if blocked else max(0, day_limit - day_used)

    def _day(self, now: float) -> tuple[int, int, bool, dict[str, str], str]:
        """Today's (used, limit, blocked by a 429, sources, note); call with the lock held."""
        midnight = utc_midnight_before(now)
        sources: dict[str, str] = {}
        if self._day_count is not None:
            ledger_day = self._ledger_day(now, midnight, self._day_count)
            sources["day_used"] = "ledger"
        else:
            ledger_day = sum(1 for t in self._local_day if t >= midnight)
            sources["day_used"] = "this session"
        day_used, note = ledger_day, ""
        key = self._key
        key_fresh = (key is not None and key.daily_used is not None and self._key_at is not None
                     and self._key_at >= midnight)
        if key_fresh and key is not None and key.daily_used is not None:
            # what OpenRouter counted when asked, plus what this session sent since
            service = key.daily_used + (self._reserved - self._key_seq)
            if service > ledger_day:
                note = (f"OpenRouter counts {service} free requests today, {service - ledger_day}"
                        " more than this computer sent: another notebook, program or computer "
                        "uses the same account.")
                day_used, sources["day_used"] = service, "OpenRouter (/key)"
        if self.rpd is not None:
            day_limit = self.rpd
            sources["day_limit"] = "/key" if key and key.daily_limit else "429 headers or setting"
        else:
            day_limit = FREE_RPD
            sources["day_limit"] = "default (50/day until 10 credits are bought)"
        blocked = self._day_blocked_until > now
        if blocked:
            sources["day_used"] = "429 per-day"
            day_used = day_limit  # the service said the day is spent, whatever we counted
        return min(day_used, day_limit), day_limit, blocked, sources, note

    def _class_figures(self) -> tuple[int, int, int] | None:
        """The class's (minute used, day used, waiting) from its database, read at most every
        CLASS_CACHE_S; the last figures known while it cannot be reached."""
        if self.shared is None:
            return None
        now = time.monotonic()
        cached = self._class_cache
        if cached is not None and 0 <= now - cached[0] < CLASS_CACHE_S:
            return cached[1]
        try:
            pool = self.shared.state(self.window_s)
            figures: tuple[int, int, int] | None = (pool.minute_used, pool.day_used,
                                                    pool.waiting)
        except LedgerUnavailable:
            figures = cached[1] if cached is not None else None
        self._class_cache = (now, figures)
        return figures

    def state(self) -> QuotaState:
        shared = self._class_figures()
        with self._lock:
            now = self.clock()
            self._prune(now)
            day_used, day_limit, blocked, sources, note = self._day(now)
            minute_used = self.rpm if self._minute_blocked_until > now else len(self._sent)
            if shared is not None:
                minute_used = min(self.rpm, max(minute_used, shared[0]))
                if shared[1] > day_used and not blocked:
                    day_used, sources["day_used"] = min(shared[1], day_limit), "class database"
                sources["minute_used"] = "class database"
                note = (f"Shared by the class: {shared[2]} requests waiting for a slot. "
                        + note).strip()
            minute_reset = None
            if self._sent:
                minute_reset = self._sent[0] + self.window_s
            if self._minute_blocked_until > now:
                minute_reset = max(minute_reset or 0.0, self._minute_blocked_until)
            return QuotaState(
                minute_used=minute_used,
                minute_limit=self.rpm,
                minute_reset_at=minute_reset,
                day_used=day_used,
                day_limit=day_limit,
                day_reset_at=self._day_blocked_until if blocked else utc_midnight_after(now),
                now=now,
                window_s=self.window_s,
                sources=sources,
                note=note,
                waiting_s=max(0.0, self._waiting_until - now),
                day_blocked=blocked,
                last_model=self.last_model,
                budget=self.budget,
                budget_used=self.budget_used,
                queue_place=self._queue[0] if self._queue else None,
                queue_size=self._queue[1] if self._queue else None,
            )


def _insert_sorted(stamps: deque[float], stamp: float) -> None:
    """Add ``stamp`` keeping ``stamps`` in order (nearly always at the end: one append)."""
    if not stamps or stamps[-1] <= stamp:
        stamps.append(stamp)
    else:
        bisect.insort(stamps, stamp)


def format_countdown(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return str(timedelta(seconds=seconds)) if seconds >= 3600 else f"{seconds // 60}:{seconds % 60:02d}"
