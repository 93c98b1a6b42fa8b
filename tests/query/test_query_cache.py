"""QueryCache (crdtsync/query/query_cache.py): hash -> Query, find and find_all with filters,
removal, typed events and the event log."""

from __future__ import annotations

import asyncio
from typing import Any

from crdtsync import FakeClock, QueryClient
from crdtsync.origins import FETCH
from crdtsync.query.events import CacheEvent, ObserverAdded, ObserverRemoved, QueryAdded, QueryRemoved, QueryUpdated
from crdtsync.query.filters import QueryFilters
from crdtsync.query.options import QueryFunctionContext, QueryOptions
from crdtsync.query.query import Query
from crdtsync.query.query_cache import QueryCache
from crdtsync.query.state import Invalidate


def build(client: QueryClient, key: tuple[Any, ...], **options: Any) -> Query:
    return client.query_cache.build(client, QueryOptions(query_key=key, **options))


async def test_build_finds_or_creates_by_key_hash(client: QueryClient) -> None:
    events: list[CacheEvent] = []
    client.query_cache.subscribe(events.append)
    a = build(client, ("todos", {"page": 1, "sort": "due"}))
    b = build(client, ("todos", {"sort": "due", "page": 1}), gc_time=1)  # mapping keys are sorted
    assert a is b and b.options.gc_time == 300.0  # the first options stay (the client sets new ones)
    assert events == [QueryAdded(a)]
    assert len(client.query_cache) == 1 and client.query_cache.get(a.query_hash) is a


async def test_find_exact_and_by_prefix(client: QueryClient) -> None:
    t1, t2, u = build(client, ("todos", 1)), build(client, ("todos", 2)), build(client, ("users", 1))
    qc = client.query_cache
    assert qc.find(("todos", 1)) is t1
    assert qc.find(("todos",)) is None
    assert qc.find(("todos",), exact=False) is t1
    assert qc.find_all(("todos",)) == [t1, t2]
    assert qc.find_all() == [t1, t2, u]
    assert qc.find_all(QueryFilters(query_key=("todos", 2), exact=True)) == [t2]
    assert qc.find_all(query_key=("todos",), predicate=lambda q: q.query_key[1] == 2) == [t2]


async def test_find_all_by_staleness_and_fetch_status(client: QueryClient, clock: FakeClock) -> None:
    gate = asyncio.Event()

    async def fn(ctx: QueryFunctionContext) -> Any:
        await gate.wait()
        return 1

    fresh = build(client, ("fresh",), stale_time=100)
    fresh.set_data(1)
    stale = build(client, ("stale",), stale_time=100)
    stale.set_data(1)
    stale.dispatch(Invalidate())
    busy = build(client, ("busy",), query_fn=fn)
    task = asyncio.create_task(busy.fetch())
    await clock.settle()
    qc = client.query_cache
    assert qc.find_all(stale=False) == [fresh]
    assert qc.find_all(stale=True) == [stale, busy]
    assert qc.find_all(fetch_status="fetching") == [busy]
    assert qc.find_all(type="active") == []  # no observers anywhere
    gate.set()
    await task


async def test_remove_destroys_and_tells_listeners(client: QueryClient) -> None:
    events: list[CacheEvent] = []
    q = build(client, ("x",))
    client.query_cache.subscribe(events.append)
    client.query_cache.remove(q)
    assert events == [QueryRemoved(q)] and client.query_cache.find(("x",)) is None
    client.query_cache.remove(q)  # twice: nothing more
    assert len(events) == 1
    client.replica.write(("x",), 5)
    assert not q.state.has_data  # destroyed: it stopped following its document
    other = build(client, ("y",))
    client.query_cache.clear()
    assert len(client.query_cache) == 0 and events[-1] == QueryRemoved(other)


async def test_updates_and_observers_are_events(client: QueryClient) -> None:
    events: list[CacheEvent] = []
    unsubscribe = client.query_cache.subscribe(events.append)
    obs = client.observe(("o",), enabled=False)
    stop = obs.subscribe(lambda r: None)
    q = client.query_cache.find(("o",))
    assert q is not None
    q.dispatch(Invalidate())
    stop()
    assert [type(e) for e in events] == [QueryAdded, ObserverAdded, QueryUpdated, ObserverRemoved]
    unsubscribe()
    q.dispatch(Invalidate())
    assert len(events) == 4


async def test_event_log_is_bounded_and_dated(client: QueryClient, clock: FakeClock) -> None:
    qc = client.query_cache
    assert qc.event_log() == []
    qc.enable_event_log(maxlen=2)
    q = build(client, ("log",))
    await clock.advance(5)
    q.set_data(1)
    q.dispatch(Invalidate())
    log = qc.event_log()
    assert [(e.event, e.detail) for e in log] == [("QueryUpdated", "Success"), ("QueryUpdated", "Invalidate")]
    assert all(e.at == clock.now() and e.query_hash == q.query_hash for e in log)


async def test_the_fetch_writer_applies_to_queries_built_after_it_is_set(clock: FakeClock) -> None:
    cache = QueryCache()
    client = QueryClient(clock=clock, query_cache=cache)
    seen: list[Any] = []
    before = build(client, ("before",))

    def writer(query: Query, data: Any) -> None:
        seen.append(data)
        query.write_data(data, origin=FETCH)

    cache.set_fetch_writer(writer)
    after = build(client, ("after",))
    before.set_data(1, origin=FETCH)
    after.set_data(2, origin=FETCH)
    assert seen == [2]
    await client.close()
