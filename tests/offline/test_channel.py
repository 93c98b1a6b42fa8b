"""LocalChannel in one process (several channels on one name compete like processes do):
election, takeover, catch-up, the leader task, limits, paths."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from crdtsync.offline import ChannelLimits, LocalChannel, Role, channel_dir
from crdtsync.offline.election import LeaderLock
from crdtsync.replica import Replica
from crdtsync.testing.waiting import until_value as until

pytestmark = pytest.mark.timeout(30)




def test_lock_is_exclusive_and_handed_over(tmp_path: Path) -> None:
    a, b = LeaderLock(tmp_path / "l"), LeaderLock(tmp_path / "l")
    assert a.try_acquire() and a.held
    assert not b.try_acquire()
    got = threading.Event()
    b.start(got.set)
    assert not got.wait(0.05)  # bounded check that it is still blocked
    a.release()
    assert got.wait(5) and b.held
    b.release()
    assert not b.held and not b.try_acquire()  # a released candidacy stays out


async def test_first_leads_others_follow_and_catch_up(tmp_path: Path) -> None:
    ra, rb = Replica(), Replica()
    ra.write(("todos", "1"), {"t": "from a"})
    rb.write(("todos", "2"), {"t": "from b, offline"})
    a = LocalChannel("c", ra, base_dir=tmp_path)
    await a.start()
    await a.wait_ready(5)
    b = LocalChannel("c", rb, base_dir=tmp_path)
    await b.start()
    await b.wait_ready(5)
    try:
        assert a.status.role is Role.LEADER and b.status.role is Role.FOLLOWER
        assert rb.read(("todos", "1")) == {"t": "from a"}  # ready means caught up
        await until(ra, ("todos", "2"), {"t": "from b, offline"})
        assert a.status.peers == 1
        rb.write(("todos", "3"), "live")
        await until(ra, ("todos", "3"), "live")
    finally:
        await b.close()
        await a.close()
    assert a.status.role is Role.CLOSED


async def test_takeover_and_nothing_lost(tmp_path: Path) -> None:
    reps = [Replica() for _ in range(3)]
    chans = [LocalChannel("t", r, base_dir=tmp_path) for r in reps]
    for c in chans:
        await c.start()
        await c.wait_ready(5)
    try:
        assert chans[0].is_leader
        await chans[0].close()
        reps[1].write(("k", "during"), "written while electing")
        leader_ready = asyncio.gather(*(_wait_connected(c) for c in chans[1:]))
        await asyncio.wait_for(leader_ready, 2)
        assert sorted(c.status.role.value for c in chans[1:]) == ["follower", "leader"]
        await until(reps[2], ("k", "during"), "written while electing")
        reps[2].write(("k", "after"), 2)
        await until(reps[1], ("k", "after"), 2)
    finally:
        for c in chans:
            await c.close()


async def _wait_connected(ch: LocalChannel) -> None:
    while not ch.status.connected:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        unsub = ch.subscribe(lambda st, fut=fut: fut.done() or fut.set_result(None))  # type: ignore[misc]
        try:
            await fut
        finally:
            unsub()


async def test_leader_task_runs_only_in_the_leader(tmp_path: Path) -> None:
    running: list[str] = []
    cancelled: list[str] = []

    def task_for(name: str) -> Any:
        async def run(replica: Replica) -> None:
            running.append(name)
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancelled.append(name)
                raise
        return run

    a = LocalChannel("lt", Replica(), base_dir=tmp_path, leader_task=task_for("a"))
    b = LocalChannel("lt", Replica(), base_dir=tmp_path, leader_task=task_for("b"))
    await a.start()
    await a.wait_ready(5)
    await b.start()
    await b.wait_ready(5)
    await asyncio.sleep(0)  # let a's leader task start (one loop turn, not a timed wait)
    assert running == ["a"]
    await a.close()
    assert cancelled == ["a"]
    await b.wait_role(Role.LEADER, 2)
    await asyncio.sleep(0)
    assert running == ["a", "b"]
    await b.close()


@pytest.mark.parametrize("payload", [
    b"\x00\x00\x10\x00" + b"x" * 8,  # announces a 4 KiB frame, over the limit
    b"\x00\x00\x00\x03abc",  # not msgpack
])
async def test_bad_or_oversized_peer_is_dropped_others_unaffected(tmp_path: Path, payload: bytes) -> None:
    limits = ChannelLimits(max_frame=2048)
    ra, rb = Replica(), Replica()
    a = LocalChannel("lim", ra, base_dir=tmp_path, limits=limits)
    b = LocalChannel("lim", rb, base_dir=tmp_path, limits=limits)
    await a.start()
    await a.wait_ready(5)
    await b.start()
    await b.wait_ready(5)
    try:
        reader, writer = await asyncio.open_unix_connection(str(a.socket_path))
        writer.write(payload)
        await writer.drain()
        rest = await asyncio.wait_for(reader.read(), 2)  # the hub answers with an Error and closes
        assert b"bad_frame" in rest or b"too_large" in rest
        writer.close()
        assert a.status.role is Role.LEADER and b.status.role is Role.FOLLOWER
        rb.write(("small", "x"), 1)
        await until(ra, ("small", "x"), 1)
    finally:
        await b.close()
        await a.close()


def test_limits_and_paths_validate(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        ChannelLimits(reconnect_min=0)
    with pytest.raises(ValueError):
        ChannelLimits(reconnect_min=1, reconnect_max=0.5)
    with pytest.raises(ValueError):
        channel_dir("")
    with pytest.raises(ValueError):
        channel_dir("x", base=tmp_path / ("d" * 120))
    d = channel_dir("any name / with ../ odd chars", base=tmp_path)
    assert d.parent == tmp_path and d.is_dir() and (os.stat(d).st_mode & 0o777) == 0o700
    assert channel_dir("any name / with ../ odd chars", base=tmp_path) == d
    assert channel_dir("other", base=tmp_path) != d
