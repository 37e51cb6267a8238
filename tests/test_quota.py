"""The quota tracker's bookkeeping: the per-minute window stays in order, and the day figure
every answer carries is the snapshot's."""

from __future__ import annotations

from openrouter_nb.api.errors import DailyRateLimit
from openrouter_nb.api.types import KeyInfo
from openrouter_nb.quota import QuotaTracker, utc_midnight_after

from .conftest import FakeClock

FREE = "meta-llama/llama-3.3-70b-instruct:free"


def test_settle_restamps_the_slot_and_keeps_the_window_sorted() -> None:
    clock = FakeClock()
    quota = QuotaTracker(rpm=100, clock=clock, recent_sends=[clock.now - 30, clock.now - 50])
    slots = []
    for _ in range(5):
        slots.append(quota.acquire(FREE))
        clock.now += 1
    clock.now -= 10  # a clock that went back: its stamps still land in order
    late = quota.acquire(FREE)
    clock.now += 20
    quota.settle(slots[1])  # re-stamped to now: moves to the end
    quota.settle(late)
    sent = list(quota._sent)
    assert sent == sorted(sent) and len(sent) == 8
    assert sent[-2:] == [clock.now, clock.now]
    assert slots[1].stamp not in sent and late.stamp not in sent


def test_settle_of_a_pruned_slot_changes_nothing() -> None:
    clock = FakeClock()
    quota = QuotaTracker(rpm=100, window_s=60.0, clock=clock)
    old = quota.acquire(FREE)
    clock.now += 61
    quota.acquire(FREE)  # prunes the old stamp
    before = list(quota._sent)
    quota.settle(old)
    assert list(quota._sent) == before


def test_day_remaining_is_the_snapshots() -> None:
    clock = FakeClock()
    used = {"n": 7}
    quota = QuotaTracker(rpm=100, rpd=50, clock=clock, day_count=lambda since: used["n"])
    assert quota.day_remaining() == quota.state().day_remaining == 43
    for _ in range(3):
        quota.settle(quota.acquire(FREE))
    assert quota.day_remaining() == quota.state().day_remaining == 40
    quota.note_key(KeyInfo(label=None, is_free_tier=True, daily_used=45, daily_limit=50,
                           daily_remaining=5, usage=None, limit=None))
    assert quota.day_remaining() == quota.state().day_remaining == 5
    quota.note_error(DailyRateLimit("spent", http_status=429))
    assert quota.day_remaining() == quota.state().day_remaining == 0


def test_next_midnight_across_days() -> None:
    day = 86400.0
    midnight = 1_788_739_200.0  # 2026-09-07 00:00 UTC
    assert utc_midnight_after(midnight + 5) == midnight + day
    assert utc_midnight_after(midnight - 5) == midnight  # the day before, after a later day
    assert utc_midnight_after(midnight) == midnight + day
    assert utc_midnight_after(midnight + day - 0.001) == midnight + day
    assert utc_midnight_after(midnight + day) == midnight + 2 * day


def test_a_slot_in_flight_when_the_ledger_was_counted_is_not_lost_when_it_settles() -> None:
    """Three requests at once (a comparison): the figure was read while one was in flight,
    then its row was written and it settled. The meter must not fall back by one (seen in a
    browser test as 3/50 where 4/50 was due)."""
    clock = FakeClock()
    rows = {"n": 0}  # the ledger's rows (written before a slot settles)
    quota = QuotaTracker(rpm=100, rpd=50, clock=clock, day_count=lambda since: rows["n"])
    slot = quota.acquire(FREE)
    assert quota.state().day_used == 1  # counted as in flight; the ledger was read
    rows["n"] += 1  # its row is written...
    quota.settle(slot)  # ...and then it settles, all within the day-count cache's life
    assert quota.state().day_used == 1
    assert quota.day_remaining() == 49


def test_a_later_snapshot_is_never_overtaken_by_an_earlier_one() -> None:
    """Threads of a comparison settle together; a listener (the meter) must end on the latest
    snapshot, even when an earlier delivery is slow (seen as a meter stuck one behind)."""
    import threading

    quota = QuotaTracker(rpm=100, rpd=50, clock=FakeClock())
    inside, release = threading.Event(), threading.Event()
    seen: list[str | None] = []

    def listener(state: object) -> None:
        model = getattr(state, "last_model", None)
        if model == "first":
            inside.set()
            release.wait(timeout=5)  # a slow delivery of the earlier snapshot
        seen.append(model)

    quota.subscribe(listener)
    first = threading.Thread(target=quota.note_result, args=("first",))
    first.start()
    assert inside.wait(timeout=5)
    second = threading.Thread(target=quota.note_result, args=("second",))
    second.start()
    second.join(timeout=0.3)  # with the fix it waits for the first delivery to end
    release.set()
    first.join(timeout=5)
    second.join(timeout=5)
    assert seen[-1] == "second", seen
