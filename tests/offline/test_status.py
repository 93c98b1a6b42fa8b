"""ConnectionMonitor: classification, graceful degradation, one refetch per stale query."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from crdtsync import FakeClock, QueryClient
from crdtsync.errors import ClientError
from crdtsync.offline import ConnectionMonitor, Connectivity, LocalChannel, classify
from crdtsync.replica import Replica

ON, DEG, OFF = Connectivity.ONLINE, Connectivity.DEGRADED, Connectivity.OFFLINE


@pytest.mark.parametrize(("local", "relay", "fetch_ok", "want"), [
    (None, None, True, ON), (None, None, False, OFF),
    (None, True, True, ON), (None, False, True, DEG), (None, True, False, DEG), (None, False, False, OFF),
    (False, None, True, DEG), (True, True, True, ON), (False, False, False, OFF),
])
def test_classify(local: bool | None, relay: bool | None, fetch_ok: bool, want: Connectivity) -> None:
    state, reason = classify(local=local, relay=relay, fetch_ok=fetch_ok)
    assert state is want and (reason == "") == (want is ON)


class Api:
    def __init__(self) -> None:
        self.down = False
        self.calls: dict[Any, int] = {}

    async def fetch(self, ctx: Any) -> Any:
        self.calls[ctx.query_key] = self.calls.get(ctx.query_key, 0) + 1
        if self.down:
            raise ConnectionError("network unreachable")
        return {"key": str(ctx.query_key), "n": self.calls[ctx.query_key]}


async def test_degrades_to_offline_keeps_cached_data_and_refetches_each_stale_query_once() -> None:
    clock = FakeClock()
    client = QueryClient(clock=clock)
    client.mount()
    api = Api()
    monitor = ConnectionMonitor(client, relay=True, failures_to_offline=3)
    monitor.set_relay_connected(True)
    assert monitor.status.state is ON and monitor.status.last_sync_at == clock.now()
    keys = [("item", i) for i in range(5)]
    observers = [client.observe(k, api.fetch, stale_time=10, retry=0) for k in keys]
    unsubs = [o.subscribe(lambda r: None) for o in observers]
    await clock.settle()
    for k in keys:
        await client.fetch_query(k, api.fetch, stale_time=10)
    cached = {k: client.get_query_data(k) for k in keys}
    assert monitor.status.state is ON

    api.down = True
    monitor.set_relay_connected(False)
    assert monitor.status.state is DEG
    await clock.advance(11)  # everything is stale now
    for k in keys[:3]:
        await client.refetch_queries(k)
    assert monitor.status.state is OFF and "fetches failing" in monitor.status.reason
    assert not client.online_manager.is_online()
    assert {k: client.get_query_data(k) for k in keys} == cached  # cached data stays usable
    assert all(o.get_current_result().data == cached[o.query.query_key] for o in observers)

    before = dict(api.calls)
    api.down = False
    monitor.set_relay_connected(True)  # recovery: the relay is back
    assert monitor.status.state is DEG  # relay up, fetch failures not yet cleared
    assert client.online_manager.is_online()
    await clock.settle(50)
    refetched = {k: api.calls[k] - before[k] for k in keys}
    assert refetched == {k: 1 for k in keys}, refetched  # once each, not a storm
    assert monitor.status.state is ON and monitor.status.fetch_failures == 0
    for u in unsubs:
        u()
    monitor.close()
    await client.close()


async def test_probe_brings_a_relayless_client_back() -> None:
    clock = FakeClock()
    client = QueryClient(clock=clock)
    network_up = False

    async def probe() -> bool:
        return network_up

    monitor = ConnectionMonitor(client, failures_to_offline=2, probe=probe, probe_interval=5)
    monitor.report_fetch_failure()
    monitor.report_fetch_failure()
    assert monitor.status.state is OFF and not client.online_manager.is_online()
    await clock.advance(5)
    assert monitor.probes == 1 and monitor.status.state is OFF
    network_up = True
    await clock.advance(5)
    assert monitor.probes == 2 and monitor.status.state is ON and client.online_manager.is_online()
    await clock.advance(60)
    assert monitor.probes == 2  # no probing while online
    monitor.close()


async def test_without_a_way_back_the_online_manager_is_left_alone() -> None:
    client = QueryClient()
    monitor = ConnectionMonitor(client, failures_to_offline=1)
    monitor.report_fetch_failure()
    assert monitor.status.state is OFF
    assert client.online_manager.is_online()  # else paused fetches could never tell us it is back
    monitor.close()


async def test_client_errors_do_not_count_as_network_failures() -> None:
    client = QueryClient()
    monitor = ConnectionMonitor(client, failures_to_offline=1)

    async def not_found(ctx: Any) -> Any:
        raise ClientError("404", status=404)

    with pytest.raises(ClientError):
        await client.fetch_query(("gone",), not_found)
    assert monitor.status.state is ON
    monitor.close()


async def test_local_channel_state_is_part_of_the_status(tmp_path: Path) -> None:
    client = QueryClient(replica=Replica())
    channel = LocalChannel("st", client.replica, base_dir=tmp_path)
    monitor = ConnectionMonitor(client, channel=channel)
    assert monitor.status.state is DEG and monitor.status.local is False
    await channel.start()
    await channel.wait_ready(5)
    assert monitor.status.state is ON and monitor.status.local is True
    seen: list[Connectivity] = []
    monitor.subscribe(lambda s: seen.append(s.state))
    await channel.close()
    assert seen[-1] is DEG
    monitor.close()


async def test_wait_for_and_validation() -> None:
    client = QueryClient()
    monitor = ConnectionMonitor(client, relay=True)
    waiter = asyncio.ensure_future(monitor.wait_for(ON, timeout=2))
    await asyncio.sleep(0)
    monitor.set_relay_connected(True)
    assert (await waiter).state is ON
    with pytest.raises(ValueError):
        ConnectionMonitor(client, failures_to_offline=0)
    monitor.close()
