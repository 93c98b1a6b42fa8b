"""The one gc timer (crdtsync/core/removable.py)."""

from __future__ import annotations

import math

from crdtsync import FakeClock
from crdtsync.clock import Clock
from crdtsync.core.removable import Removable


class Entry(Removable):
    def __init__(self, clock: Clock, gc_time: float) -> None:
        self.clock = clock
        self.gc_time = gc_time
        self.removed = 0

    def gc_clock(self) -> Clock:
        return self.clock

    def optional_remove(self) -> None:
        self.removed += 1


async def test_fires_once_after_gc_time_and_restarts_on_schedule() -> None:
    clock = FakeClock()
    e = Entry(clock, 10)
    e.schedule_gc()
    await clock.advance(6)
    e.schedule_gc()  # restarts: 10 s from now
    await clock.advance(6)
    assert e.removed == 0
    await clock.advance(4)
    assert e.removed == 1
    await clock.advance(100)
    assert e.removed == 1 and clock.pending_timers() == 0


async def test_clear_and_infinity() -> None:
    clock = FakeClock()
    e = Entry(clock, 1)
    e.schedule_gc()
    e.clear_gc()
    await clock.advance(5)
    assert e.removed == 0
    forever = Entry(clock, math.inf)
    forever.schedule_gc()
    assert clock.pending_timers() == 0


def test_without_an_event_loop_it_is_deferred() -> None:
    from crdtsync import SystemClock

    e = Entry(SystemClock(), 1)
    e.schedule_gc()
    assert e.gc_deferred and e.removed == 0
