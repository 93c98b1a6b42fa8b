"""bind_client: the query cache decides which documents a SyncProvider subscribes."""

from __future__ import annotations

from typing import Any

from crdtsync import FakeClock, QueryClient
from crdtsync.normalize import EntityType
from crdtsync.sync import Backoff, MemoryRelay, SyncProvider
from crdtsync.sync.client_binding import bind_client
from crdtsync.testing.waiting import settle_until


def returning(value: Any) -> Any:
    async def fn(ctx: Any) -> Any:
        return value

    return fn


async def test_observed_queries_and_referenced_entities_are_subscribed_then_released() -> None:
    clock = FakeClock()
    relay = MemoryRelay(clock=clock)
    client = QueryClient(clock=clock)
    provider = SyncProvider(
        client.replica, relay.connect, clock=clock, gc_time=5, backoff=Backoff(initial=1.0, maximum=8.0, jitter=0.0)
    )
    binding = bind_client(client, provider)
    await provider.start()
    await provider.wait_connected()
    todo = EntityType("todo")
    await client.fetch_query(("unobserved", 1), returning(1))
    obs = client.observe(("todos", "list"), returning([{"id": 1, "t": "a"}]), normalize=[todo], gc_time=10)
    stop = obs.subscribe(lambda r: None)
    await settle_until(clock, lambda: obs.get_current_result().is_success)
    assert provider.subscriptions == {"todos", "entity:todo"}  # not "unobserved"
    stop()
    await clock.advance(9)
    assert provider.subscriptions == {"todos", "entity:todo"}
    await clock.advance(2)  # the query leaves the cache; the provider unsubscribes gc_time later
    await clock.advance(6)
    assert "todos" not in provider.subscriptions
    await clock.advance(300)  # the entity document is collected after the entity gc_time
    assert provider.subscriptions == frozenset()
    binding.close()
    await provider.close()
    await relay.close()


async def test_remote_updates_reach_exactly_the_affected_observers() -> None:
    clock = FakeClock()
    relay = MemoryRelay(clock=clock)
    a, b = QueryClient(clock=clock), QueryClient(clock=clock)
    pa = SyncProvider(a.replica, relay.connect, clock=clock)
    pb = SyncProvider(b.replica, relay.connect, clock=clock)
    ba, bb = bind_client(a, pa), bind_client(b, pb)
    for p in (pa, pb):
        await p.start()
        await p.wait_connected()
    a.set_query_data(("todos", 1), {"title": "one"})
    a.set_query_data(("todos", 2), {"title": "two"})
    seen: dict[int, list[Any]] = {1: [], 2: []}
    stops = []

    def recorder(bucket: list[Any]) -> Any:
        return lambda result: bucket.append(result.data)

    for i in (1, 2):
        obs = b.observe(("todos", i), enabled=False)
        stops.append(obs.subscribe(recorder(seen[i])))
    release = ba.retain("todos")  # a writer with no observers holds its document explicitly
    await pa.wait_synced("todos")
    await pb.wait_synced("todos")
    await settle_until(clock, lambda: b.get_query_data(("todos", 2)) == {"title": "two"})
    seen[1].clear()
    seen[2].clear()
    a.set_query_data(("todos", 1), {"title": "ONE"})
    await settle_until(clock, lambda: seen[1] == [{"title": "ONE"}])
    assert seen[2] == []
    for s in stops:
        s()
    release()
    ba.close()
    bb.close()
    for p in (pa, pb):
        await p.close()
    await relay.close()


async def test_binding_made_during_an_entity_gc_window_subscribes_on_re_reference() -> None:
    clock = FakeClock()
    relay = MemoryRelay(clock=clock)
    client = QueryClient(clock=clock)
    todo = EntityType("todo", gc_time=10)
    obs = client.observe(("todos",), returning([{"id": 1}]), normalize=[todo], gc_time=1)
    stop = obs.subscribe(lambda r: None)
    await settle_until(clock, lambda: obs.get_current_result().is_success)
    stop()
    await clock.advance(1.5)  # the query is gone; entity:todo waits out its gc time
    provider = SyncProvider(client.replica, relay.connect, clock=clock)
    binding = bind_client(client, provider)
    again = client.observe(("todos",), returning([{"id": 1}]), normalize=[todo])
    stop2 = again.subscribe(lambda r: None)
    await settle_until(clock, lambda: again.get_current_result().is_success)
    assert provider.subscriptions == {"todos", "entity:todo"}
    stop2()
    binding.close()
    await provider.close()
    await relay.close()
