"""crdtsync.testing.waiting: waits end on the change that satisfies them, and time out loudly."""

from __future__ import annotations

import asyncio

import pytest

from crdtsync import Replica
from crdtsync.clock import FakeClock
from crdtsync.testing.waiting import Changes, settle_until, until, until_replica, until_value


async def test_until_wakes_on_a_poke_and_only_then_rechecks() -> None:
    box = {"n": 0, "checks": 0}
    changes = Changes()

    def ready() -> bool:
        box["checks"] += 1
        return box["n"] == 2

    async def writer() -> None:
        for _ in range(2):
            await asyncio.sleep(0)
            box["n"] += 1
            changes.poke()

    task = asyncio.create_task(writer())
    await until(ready, changes=changes, timeout=1)
    await task
    assert box["checks"] <= 3  # the first check, then once per poke


async def test_until_times_out_with_an_assertion_naming_what() -> None:
    with pytest.raises(AssertionError, match="the moon"):
        await until(lambda: False, changes=Changes(), timeout=0.01, what="the moon")


async def test_until_replica_and_until_value_wake_on_writes() -> None:
    r = Replica()

    async def write() -> None:
        await asyncio.sleep(0)
        r.write(("d", "k"), "v")

    task = asyncio.create_task(write())
    await until_value(r, ("d", "k"), "v", timeout=1)
    await task
    task = asyncio.create_task(asyncio.sleep(0))
    r.write(("d", "j"), 1)
    await until_replica(lambda: r.read(("d", "j")) == 1, r, "d", timeout=1)
    await task


async def test_settle_until_does_not_move_the_fake_clock() -> None:
    clock = FakeClock()
    start = clock.now()
    fired: list[int] = []
    clock.call_later(1.0, lambda: fired.append(1))
    with pytest.raises(AssertionError):
        await settle_until(clock, lambda: bool(fired), rounds=5)
    assert clock.now() == start and fired == []
