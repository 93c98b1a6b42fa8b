"""The leader holds the one relay connection for the whole channel (real relay, loopback)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from crdtsync.offline import LocalChannel, Role
from crdtsync.offline.relay_link import follow_relay_status, relay_leader_task
from crdtsync.relay import Relay, RelayConfig
from crdtsync.replica import Replica
from crdtsync.storage import MemoryStore
from crdtsync.sync.provider import SyncProvider
from tests.offline.test_channel import until

pytestmark = pytest.mark.timeout(30)


async def test_followers_reach_the_relay_through_the_leader_and_back(tmp_path: Path) -> None:
    relay = Relay(RelayConfig(port=0), MemoryStore())
    await relay.start()
    url = f"{relay.url}/v1"
    statuses: dict[str, list[bool]] = {"a": [], "b": []}
    providers: list[SyncProvider] = []

    def make(replica: Replica) -> SyncProvider:
        p = SyncProvider(replica, url)
        providers.append(p)
        return p

    ra, rb = Replica(), Replica()
    ra.write(("todos", "1"), "seed")
    a = LocalChannel("rl", ra, base_dir=tmp_path,
                     leader_task=relay_leader_task(make, on_status=statuses["a"].append))
    b = LocalChannel("rl", rb, base_dir=tmp_path,
                     leader_task=relay_leader_task(make, on_status=statuses["b"].append))
    follower_view: list[bool] = []
    stop_following = follow_relay_status(rb, follower_view.append)
    remote = Replica()
    outside = SyncProvider(remote, url)
    try:
        await a.start()
        await a.wait_ready(5)
        await b.start()
        await b.wait_ready(5)
        async with outside:
            outside.subscribe("todos")
            await until(remote, ("todos", "1"), "seed", timeout=5)
            rb.write(("todos", "2"), "from follower")  # follower -> hub -> leader's provider -> relay
            await until(remote, ("todos", "2"), "from follower", timeout=5)
            remote.write(("todos", "3"), "from outside")  # relay -> leader -> hub -> follower
            await until(rb, ("todos", "3"), "from outside", timeout=5)
            assert len(providers) == 1 and statuses["a"][-1] is True and statuses["b"] == []
            assert follower_view[-1] is True  # the follower sees the leader's relay connection
            assert "crdtsync:channel" not in outside.subscriptions

            await a.close()  # leadership moves: b opens its own relay connection
            await b.wait_role(Role.LEADER, 2)
            assert statuses["a"][-1] is False
            rb.write(("todos", "4"), "after takeover")
            await until(remote, ("todos", "4"), "after takeover", timeout=5)
            assert len(providers) == 2
            assert statuses["b"][-1] is True  # its write reached the relay, so it reported connected
            assert follower_view[-1] is True and False in follower_view  # it saw the gap, then b connect
    finally:
        stop_following()
        await b.close()
        await a.close()
        await relay.stop()



async def test_followers_hear_the_relay_go_away_when_the_leader_closes(tmp_path: Path) -> None:
    relay = Relay(RelayConfig(port=0), MemoryStore())
    await relay.start()
    url = f"{relay.url}/v1"
    ra, rb = Replica(), Replica()
    a = LocalChannel("gone", ra, base_dir=tmp_path, leader_task=relay_leader_task(lambda r: SyncProvider(r, url)))
    b = LocalChannel("gone", rb, base_dir=tmp_path)  # no leader task: it will not reconnect the relay
    view: list[bool] = []
    connected = asyncio.Event()

    def record(value: bool) -> None:
        view.append(value)
        if value:
            connected.set()

    stop = follow_relay_status(rb, record)
    try:
        await a.start()
        await a.wait_ready(5)
        await b.start()
        await b.wait_ready(5)
        await asyncio.wait_for(connected.wait(), 5)
        assert view[-1] is True
        await a.close()
        await b.wait_role(Role.LEADER, 2)
        assert view[-1] is False
    finally:
        stop()
        await b.close()
        await a.close()
        await relay.stop()
