"""Ported from TanStack query-core ``queryCache.test.tsx`` (behaviour, not code)."""

from __future__ import annotations

import asyncio

from crdtsync import FakeClock, QueryClient
from crdtsync.query import (
    ObserverAdded,
    ObserverRemoved,
    QueryAdded,
    QueryFilters,
    QueryRemoved,
    QueryUpdated,
)
from tests.tanstack.conftest import Server, returning, settle


async def test_subscribe_is_notified_when_query_added(client: QueryClient) -> None:
    """queryCache > subscribe > 'should pass the correct query'."""
    events: list[object] = []
    unsubscribe = client.query_cache.subscribe(events.append)
    client.set_query_data(("a",), "data")
    added = [e for e in events if isinstance(e, QueryAdded)]
    assert len(added) == 1 and added[0].query.query_key == ("a",)
    unsubscribe()


async def test_subscribe_sees_updates_of_fetch(client: QueryClient) -> None:
    """queryCache > subscribe > 'should notify listeners when new query is added' and updated."""
    events: list[object] = []
    client.query_cache.subscribe(events.append)
    await client.prefetch_query(("a",), returning("data"))
    names = [type(e.action).__name__ for e in events if isinstance(e, QueryUpdated)]
    assert names[0] == "Fetch" and "Success" in names


async def test_subscribe_sees_observer_added_and_removed(client: QueryClient) -> None:
    """queryCache > subscribe > 'should notify query cache when a query becomes stale' (observer
    events)."""
    events: list[object] = []
    client.query_cache.subscribe(events.append)
    unsubscribe = client.observe(("o",), returning("d")).subscribe(lambda r: None)
    await settle()
    unsubscribe()
    assert any(isinstance(e, ObserverAdded) for e in events)
    assert any(isinstance(e, ObserverRemoved) for e in events)


async def test_unsubscribed_listener_hears_nothing(client: QueryClient) -> None:
    """queryCache > subscribe > 'should not notify after unsubscribing'."""
    events: list[object] = []
    unsubscribe = client.query_cache.subscribe(events.append)
    unsubscribe()
    client.set_query_data(("a",), "data")
    assert events == []


async def test_removed_event_on_remove(client: QueryClient) -> None:
    """queryCache > 'should notify when a query is removed'."""
    client.set_query_data(("a",), "data")
    events: list[object] = []
    client.query_cache.subscribe(events.append)
    client.remove_queries(("a",))
    assert [type(e) for e in events] == [QueryRemoved]


async def test_find_exact_by_default(client: QueryClient) -> None:
    """queryCache > find > 'find trigger correct results'."""
    client.set_query_data(("k", 1), 1)
    assert client.query_cache.find(("k", 1)) is not None
    assert client.query_cache.find(("k",)) is None
    assert client.query_cache.find(("k",), exact=False) is not None


async def test_find_all_filters(client: QueryClient, clock: FakeClock) -> None:
    """queryCache > findAll > 'should return all the queries when no filters are defined' and the
    key / exact / predicate / fetch_status filters."""
    client.set_query_data(("k1",), 1)
    client.set_query_data(("k1", "a"), 2)
    client.set_query_data(("k2",), 3)
    cache = client.query_cache
    assert len(cache.find_all()) == 3
    assert {q.query_key for q in cache.find_all(("k1",))} == {("k1",), ("k1", "a")}
    assert [q.query_key for q in cache.find_all(("k1",), exact=True)] == [("k1",)]
    assert [q.query_key for q in cache.find_all(predicate=lambda q: q.state.data == 3)] == [("k2",)]
    assert len(cache.find_all(fetch_status="idle")) == 3
    assert cache.find_all(fetch_status="fetching") == []
    assert cache.find_all(("nothing",)) == []


async def test_find_all_by_type(client: QueryClient) -> None:
    """queryCache > findAll > type active / inactive."""
    client.set_query_data(("inactive",), 1)
    unsubscribe = client.observe(("active",), returning("d")).subscribe(lambda r: None)
    await settle()
    cache = client.query_cache
    assert [q.query_key for q in cache.find_all(type="active")] == [("active",)]
    assert [q.query_key for q in cache.find_all(type="inactive")] == [("inactive",)]
    unsubscribe()
    assert len(cache.find_all(type="inactive")) == 2


async def test_find_all_stale_and_fresh(client: QueryClient) -> None:
    """queryCache > findAll > stale: true / false."""
    fresh = client.observe(("fresh",), returning("d"), stale_time=60)
    stale = client.observe(("stale",), returning("d"))
    u1 = fresh.subscribe(lambda r: None)
    u2 = stale.subscribe(lambda r: None)
    await settle()
    cache = client.query_cache
    assert [q.query_key for q in cache.find_all(stale=True)] == [("stale",)]
    assert [q.query_key for q in cache.find_all(stale=False)] == [("fresh",)]
    await client.invalidate_queries(("fresh",), refetch_type="none")
    assert {q.query_key for q in cache.find_all(stale=True)} == {("fresh",), ("stale",)}
    u1()
    u2()


async def test_find_all_stale_without_observers(client: QueryClient, clock: FakeClock) -> None:
    """queryCache > findAll > stale queries without observers."""
    await client.fetch_query(("t",), returning("d"), stale_time=10)
    # DIFFERENCE: without observers the query's own stale_time decides (TanStack: fresh unless
    # invalidated or without data). See docs/queries.md, "Differences from TanStack Query".
    assert client.query_cache.find_all(stale=True) == []
    await clock.advance(11)
    assert [q.query_key for q in client.query_cache.find_all(stale=True)] == [("t",)]


async def test_find_all_mapping_key_part_by_subset(client: QueryClient) -> None:
    """queryCache > findAll > 'should filter by partial object keys'."""
    client.set_query_data(("todos", {"status": "done", "page": 1}), 1)
    client.set_query_data(("todos", {"status": "open", "page": 1}), 2)
    found = client.query_cache.find_all(("todos", {"status": "done"}))
    assert [q.state.data for q in found] == [1]
    assert len(client.query_cache.find_all(("todos", {"page": 1}))) == 2


async def test_find_all_accepts_query_filters(client: QueryClient) -> None:
    """queryCache > findAll > a QueryFilters object is the same as keywords."""
    client.set_query_data(("k", 1), 1)
    f = QueryFilters(query_key=("k",), exact=False, type="all")
    assert [q.query_key for q in client.query_cache.find_all(f)] == [("k", 1)]


async def test_query_added_once_per_key(client: QueryClient) -> None:
    """queryCache > 'should not create a new query for the same key' (build finds it)."""
    client.set_query_data(("one",), 1)
    query = client.query_cache.find(("one",))
    client.set_query_data(("one",), 2)
    assert client.query_cache.find(("one",)) is query and len(client.query_cache) == 1


async def test_clear_removes_all(client: QueryClient) -> None:
    """queryCache > clear > 'should remove all queries'."""
    client.set_query_data(("a",), 1)
    client.set_query_data(("b",), 2)
    removed: list[object] = []
    client.query_cache.subscribe(lambda e: removed.append(e) if isinstance(e, QueryRemoved) else None)
    client.clear()
    assert len(client.query_cache) == 0 and len(removed) == 2


async def test_keys_hash_independent_of_mapping_order(client: QueryClient) -> None:
    """queryCache > build > 'should create one query for keys whose objects differ only in key
    order'."""
    client.set_query_data(("t", {"a": 1, "b": 2}), "x")
    assert client.get_query_data(("t", {"b": 2, "a": 1})) == "x"
    assert len(client.query_cache) == 1


async def test_remove_cancels_running_fetch(client: QueryClient) -> None:
    """queryCache > remove > a removed query's fetch is cancelled (and its data is not written)."""
    server = Server()
    task = asyncio.create_task(client.prefetch_query(("r",), server.fn))
    await settle()
    client.remove_queries(("r",))
    await task
    assert server.calls[0].cancelled()
    assert client.query_cache.find(("r",)) is None and client.get_query_data(("r",)) is None


async def test_event_log_keeps_bounded_history(client: QueryClient) -> None:
    """queryCache > events: the bounded event log sees what listeners see."""
    client.query_cache.enable_event_log(maxlen=3)
    await client.prefetch_query(("l",), returning("d"))
    log = client.query_cache.event_log()
    assert len(log) == 3 and log[-1].detail == "Success"
