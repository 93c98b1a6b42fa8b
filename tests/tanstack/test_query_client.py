"""Ported from TanStack query-core ``queryClient.test.tsx`` (behaviour, not code)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from crdtsync import INFINITY, FakeClock, QueryClient, Replica
from crdtsync.errors import QueryCancelledError
from crdtsync.origins import remote_origin
from crdtsync.query import QueryFilters
from tests.tanstack.conftest import Server, returning, settle


async def test_fetch_query_gc_time_zero_removes_query_once_settled(client: QueryClient, clock: FakeClock) -> None:
    """fetchQuery: 'should be garbage collected after gcTime if unused' (gcTime 0)."""
    server = Server()
    task = asyncio.create_task(client.fetch_query(("gc0",), server.fn, gc_time=0))
    await settle()
    await asyncio.wait_for(clock.advance(1), 2)  # the gc timer must not spin while fetching
    assert client.query_cache.find(("gc0",)) is not None
    server.release("data")
    assert await task == "data"
    await clock.advance(0)
    assert client.query_cache.find(("gc0",)) is None
    assert clock.pending_timers() == 0


async def test_ensure_query_data_returns_initial_data_without_fetching(client: QueryClient) -> None:
    """ensureQueryData: 'should return the cached query data if the query is found' (with
    initialData the query has data, so nothing is fetched)."""
    calls: list[object] = []
    data = await client.ensure_query_data(("ens",), returning("fetched", calls), initial_data={"v": "initial"})
    assert data == {"v": "initial"}
    assert calls == []


async def test_cancel_queries_revert_resolves_pending_fetch_with_restored_data(client: QueryClient) -> None:
    """cancelQueries: 'should revert queries to their previous state' (the pending fetchQuery
    promise resolves with the restored data)."""
    client.set_query_data(("c",), "old")
    server = Server()
    task = asyncio.create_task(client.fetch_query(("c",), server.fn))
    await settle()
    await client.cancel_queries(("c",))
    assert await asyncio.wait_for(task, 2) == "old"
    state = client.get_query_state(("c",))
    assert state is not None and state.status == "success" and state.fetch_status == "idle"
    assert state.error is None


async def test_cancel_queries_revert_without_data_raises_cancelled(client: QueryClient) -> None:
    """cancelQueries: a first fetch cancelled with revert has no data to resolve with."""
    server = Server()
    task = asyncio.create_task(client.fetch_query(("c0",), server.fn))
    await settle()
    await client.cancel_queries(("c0",))
    with pytest.raises(QueryCancelledError):
        await asyncio.wait_for(task, 2)
    state = client.get_query_state(("c0",))
    assert state is not None and state.status == "pending" and state.fetch_status == "idle"


async def test_cancel_queries_without_revert_sets_error(client: QueryClient) -> None:
    """cancelQueries: 'should not revert if revert option is set to false' (status error with a
    QueryCancelledError)."""
    client.set_query_data(("c1",), "old")
    server = Server()
    task = asyncio.create_task(client.fetch_query(("c1",), server.fn))
    await settle()
    await client.cancel_queries(("c1",), revert=False)
    with pytest.raises(QueryCancelledError):
        await asyncio.wait_for(task, 2)
    state = client.get_query_state(("c1",))
    assert state is not None and state.status == "error" and isinstance(state.error, QueryCancelledError)
    assert state.data == "old"


async def test_refetch_queries_returns_at_once_for_paused_fetches(client: QueryClient) -> None:
    """refetchQueries: 'should resolve Promise immediately if query is paused'."""
    calls: list[object] = []
    await client.fetch_query(("off",), returning("v", calls))
    client.online_manager.set_online(False)
    await asyncio.wait_for(client.refetch_queries(("off",)), 2)
    state = client.get_query_state(("off",))
    assert state is not None and state.fetch_status == "paused"
    client.online_manager.set_online(True)
    await settle()
    assert len(calls) == 2
    assert client.get_query_state(("off",)).fetch_status == "idle"  # type: ignore[union-attr]


async def test_invalidate_all_skips_never_fetched_and_disabled_queries(client: QueryClient) -> None:
    """invalidateQueries: 'should not refetch disabled inactive queries even if "refetchType" is
    "all"' and 'should not refetch inactive queries that have never fetched data'."""
    never: list[object] = []
    disabled: list[object] = []
    fetched: list[object] = []
    client.observe(("inv", "never"), returning("n", never))  # built, never fetched, no observer
    obs = client.observe(("inv", "disabled"), returning("d", disabled), enabled=False)
    unsubscribe = obs.subscribe(lambda r: None)
    await client.fetch_query(("inv", "fetched"), returning("f", fetched))
    await client.invalidate_queries(("inv",), refetch_type="all")
    assert never == [] and disabled == []
    assert len(fetched) == 2
    unsubscribe()


async def test_reset_queries_restores_initial_data(client: QueryClient) -> None:
    """resetQueries: 'should reset query data to initial data if set'."""
    await client.fetch_query(("rs",), returning("fetched"), initial_data="initial", stale_time=0)
    client.set_query_data(("rs",), "fetched")
    await client.reset_queries(("rs",))
    assert client.get_query_data(("rs",)) == "initial"
    state = client.get_query_state(("rs",))
    assert state is not None and state.status == "success" and not state.is_invalidated


async def test_reconnect_refetches_after_paused_mutations_finish(client: QueryClient) -> None:
    """queryClient: 'should resume paused mutations when coming online' and 'should refetch
    queries after paused mutations are resumed' (onOnline awaits resumePausedMutations)."""
    calls: list[object] = []
    observer = client.observe(("rc",), returning("v", calls))
    unsubscribe = observer.subscribe(lambda r: None)
    await settle()
    assert len(calls) == 1
    client.online_manager.set_online(False)
    done = asyncio.Event()
    release = asyncio.Event()

    async def send(variables: object, ctx: object) -> str:
        await release.wait()
        done.set()
        return "sent"

    mutation = client.mutate(1, mutation_fn=send)
    await settle()
    assert mutation.state.is_paused
    client.online_manager.set_online(True)
    await settle()
    assert len(calls) == 1  # not before the paused mutation has finished
    release.set()
    await asyncio.wait_for(mutation.result(), 2)
    await settle()
    assert len(calls) == 2
    unsubscribe()


# -- defaultOptions / setQueryDefaults -----------------------------------------------------------
async def test_default_options_query_fn_is_used(clock: FakeClock) -> None:
    """queryClient > defaultOptions > 'should merge defaultOptions'."""
    c = QueryClient(clock=clock, default_options={"query_fn": returning("data")})
    await c.prefetch_query(("d",))
    assert c.get_query_data(("d",)) == "data"
    await c.close()


async def test_default_options_apply_to_added_queries(clock: FakeClock) -> None:
    """queryClient > defaultOptions > 'should merge defaultOptions when query is added to cache'."""
    c = QueryClient(clock=clock, default_options={"gc_time": INFINITY})
    await c.prefetch_query(("d",), returning("data"))
    query = c.query_cache.find(("d",))
    assert query is not None and query.options.gc_time == INFINITY
    await c.close()


async def test_set_query_defaults_does_not_fetch(client: QueryClient) -> None:
    """queryClient > setQueryDefaults > 'should not trigger a fetch'."""
    calls: list[object] = []
    client.set_query_defaults(("sd",), query_fn=returning("data", calls))
    await settle()
    assert client.get_query_data(("sd",)) is None and calls == []


async def test_set_query_defaults_gives_query_fn_to_observer(client: QueryClient) -> None:
    """queryClient > setQueryDefaults > 'should be able to override defaults'."""
    client.set_query_defaults(("sd",), query_fn=returning("data"))
    result = await client.observe(("sd",)).refetch()
    assert result.data == "data"


async def test_set_query_defaults_match_key_prefix(client: QueryClient) -> None:
    """queryClient > setQueryDefaults > 'should match the query key partially'."""
    client.set_query_defaults(("sd",), query_fn=returning("data"))
    result = await client.observe(("sd", "a")).refetch()
    assert result.data == "data"


async def test_set_query_defaults_do_not_match_shorter_key(client: QueryClient) -> None:
    """queryClient > setQueryDefaults > 'should not match if the query key is a subset'."""
    client.set_query_defaults(("sd", "a"), query_fn=returning("data"))
    result = await client.observe(("sd",), retry=False, enabled=False).refetch()
    assert result.status == "error"


async def test_set_query_defaults_also_set_observer_options(client: QueryClient) -> None:
    """queryClient > setQueryDefaults > 'should also set defaults for observers'."""
    calls: list[object] = []
    client.set_query_defaults(("sd",), query_fn=returning("data", calls), enabled=False)
    observer = client.observe(("sd",))
    unsubscribe = observer.subscribe(lambda r: None)
    await settle()
    result = observer.get_current_result()
    assert result.status == "pending" and result.fetch_status == "idle" and calls == []
    unsubscribe()


async def test_set_query_defaults_later_call_wins(client: QueryClient) -> None:
    """queryClient > setQueryDefaults > 'should update existing query defaults'."""
    client.set_query_defaults(("sd",), retry=3)
    client.set_query_defaults(("sd",), retry=False)
    assert client.get_query_defaults(("sd",))["retry"] is False


async def test_get_query_defaults_merges_matching_prefixes(client: QueryClient) -> None:
    """queryClient > setQueryDefaults > 'should merge defaultOptions'."""
    client.set_query_defaults(("k", "todo"), gc_time=1)
    client.set_query_defaults(("k", "todo", "detail"), stale_time=5)
    assert client.get_query_defaults(("k", "todo", "detail")) == {"gc_time": 1, "stale_time": 5}


# -- setQueryData / setQueriesData / getQueryData ------------------------------------------------
async def test_set_query_data_updater_on_missing_query(client: QueryClient) -> None:
    """queryClient > setQueryData > 'should not crash if query could not be found'."""
    client.set_query_data(("u", {"user_id": 1}), lambda prev: {**(prev or {}), "name": "James"})
    assert client.get_query_data(("u", {"user_id": 1})) == {"name": "James"}


async def test_set_query_data_with_null_in_key(client: QueryClient) -> None:
    """queryClient > setQueryData > 'should not crash when variable is null'."""
    client.set_query_data(("u", {"user_id": None}), "Old Data")
    client.set_query_data(("u", {"user_id": None}), "New Data")
    assert client.get_query_data(("u", {"user_id": None})) == "New Data"


async def test_set_query_data_creates_query(client: QueryClient) -> None:
    """queryClient > setQueryData > 'should create a new query if query was not found'."""
    client.set_query_data(("new",), "bar")
    assert client.get_query_data(("new",)) == "bar"
    assert client.query_cache.find(("new",)) is not None


async def test_set_query_data_updater_returning_none_creates_nothing(client: QueryClient) -> None:
    """queryClient > setQueryData > 'should not create a new query if query was not found and
    updater returns undefined'."""
    client.set_query_data(("none",), lambda prev: None)
    assert client.query_cache.find(("none",)) is None


async def test_set_query_data_updater_returning_none_keeps_data(client: QueryClient) -> None:
    """queryClient > setQueryData > 'should not update query data if updater returns undefined'."""
    client.set_query_data(("q",), "qux")
    client.set_query_data(("q",), lambda prev: None)
    assert client.get_query_data(("q",)) == "qux"


async def test_set_query_data_accepts_updater(client: QueryClient) -> None:
    """queryClient > setQueryData > 'should accept an update function'."""
    client.set_query_data(("q",), "test data")
    client.set_query_data(("q",), lambda old: f"new data + {old}")
    query = client.query_cache.find(("q",))
    assert query is not None and query.state.data == "new data + test data"


async def test_set_query_data_equal_value_keeps_identity(client: QueryClient) -> None:
    """queryClient > setQueryData > structural sharing (the default): an equal value keeps the
    previous object."""
    first = client.set_query_data(("q",), {"value": True})
    second = client.set_query_data(("q",), {"value": True})
    assert second is first


async def test_set_query_data_keeps_fetch_status(client: QueryClient) -> None:
    """queryClient > setQueryData > 'should not set isFetching to false'."""
    server = Server()
    task = asyncio.create_task(client.prefetch_query(("q",), server.fn))
    await settle()
    state = client.get_query_state(("q",))
    assert state is not None and state.fetch_status == "fetching" and not state.has_data
    client.set_query_data(("q",), 42)
    state = client.get_query_state(("q",))
    assert state is not None and state.data == 42 and state.fetch_status == "fetching"
    server.release(23)
    await task
    state = client.get_query_state(("q",))
    assert state is not None and state.data == 23 and state.fetch_status == "idle"


async def test_set_queries_data_updates_matching(client: QueryClient) -> None:
    """queryClient > setQueriesData > 'should update all existing, matching queries'."""
    client.set_query_data(("key", 1), 1)
    client.set_query_data(("key", 2), 2)
    result = client.set_queries_data(("key",), lambda old: old + 5 if old else None)
    assert result == [(("key", 1), 6), (("key", 2), 7)]
    assert client.get_query_data(("key", 1)) == 6 and client.get_query_data(("key", 2)) == 7


async def test_set_queries_data_accepts_filters(client: QueryClient) -> None:
    """queryClient > setQueriesData > 'should accept queryFilters'."""
    client.set_query_data(("key", 1), 1)
    client.set_query_data(("key", 2), 2)
    first = client.query_cache.find(("key", 1))
    result = client.set_queries_data(QueryFilters(predicate=lambda q: q is first), lambda old: old + 5)
    assert result == [(("key", 1), 6)]
    assert client.get_query_data(("key", 2)) == 2


async def test_set_queries_data_skips_missing_queries(client: QueryClient) -> None:
    """queryClient > setQueriesData > 'should not update non existing queries'."""
    assert client.set_queries_data(("key",), lambda old: "data") == []
    assert client.get_query_data(("key",)) is None


async def test_is_fetching_counts_fetching_queries(client: QueryClient) -> None:
    """queryClient > isFetching > 'should return length of fetching queries'."""
    a, b = Server(), Server()
    assert client.is_fetching() == 0
    ta = asyncio.create_task(client.prefetch_query(("a",), a.fn))
    await settle()
    assert client.is_fetching() == 1
    tb = asyncio.create_task(client.prefetch_query(("b",), b.fn))
    await settle()
    assert client.is_fetching() == 2
    b.release("b")
    await tb
    assert client.is_fetching() == 1
    a.release("a")
    await ta
    assert client.is_fetching() == 0


async def test_is_mutating_counts_pending_mutations(client: QueryClient) -> None:
    """queryClient > isMutating > 'should return length of mutating'."""
    first: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    second: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def wait_first(v: object, ctx: object) -> str:
        return await first

    async def wait_second(v: object, ctx: object) -> str:
        return await second

    assert client.is_mutating() == 0
    m1 = client.observe_mutation(mutation_fn=wait_first).mutate()
    assert client.is_mutating() == 1
    m2 = client.observe_mutation(mutation_fn=wait_second).mutate()
    assert client.is_mutating() == 2
    second.set_result("2")
    await m2.result()
    assert client.is_mutating() == 1
    first.set_result("1")
    await m1.result()
    assert client.is_mutating() == 0


async def test_get_query_data_found(client: QueryClient) -> None:
    """queryClient > getQueryData > 'should return the query data if the query is found'."""
    client.set_query_data(("k", "id"), "bar")
    assert client.get_query_data(("k", "id")) == "bar"


async def test_get_query_data_missing(client: QueryClient) -> None:
    """queryClient > getQueryData > 'should return undefined if the query is not found'."""
    assert client.get_query_data(("nothing",)) is None


async def test_get_query_data_matches_exactly(client: QueryClient) -> None:
    """queryClient > getQueryData > 'should match exact by default'."""
    client.set_query_data(("k", "id"), "bar")
    assert client.get_query_data(("k",)) is None


# -- ensureQueryData / getQueriesData -------------------------------------------------------------
async def test_ensure_query_data_returns_cached(client: QueryClient) -> None:
    """queryClient > ensureQueryData > 'should return the cached query data if the query is found'."""
    client.set_query_data(("k", "id"), "bar")
    assert await client.ensure_query_data(("k", "id"), returning("data")) == "bar"


async def test_ensure_query_data_returns_falsy_cached(client: QueryClient) -> None:
    """queryClient > ensureQueryData > '... if the query is found and cached query data is falsy'."""
    client.set_query_data(("k", "id"), None)
    calls: list[object] = []
    assert await client.ensure_query_data(("k", "id"), returning(0, calls)) is None
    assert calls == []


async def test_ensure_query_data_fetches_when_missing(client: QueryClient) -> None:
    """queryClient > ensureQueryData > 'should call fetchQuery and return its results if the query
    is not found'."""
    assert await client.ensure_query_data(("k",), returning("data")) == "data"


async def test_ensure_query_data_revalidates_in_background(client: QueryClient) -> None:
    """queryClient > ensureQueryData > '... preFetchQuery in the background when revalidateIfStale
    is set'."""
    client.set_query_data(("k", "id"), "old")
    server = Server()
    assert await client.ensure_query_data(("k", "id"), server.fn, revalidate_if_stale=True) == "old"
    await settle()
    server.release("new")
    await settle()
    assert await client.ensure_query_data(("k", "id"), server.fn, revalidate_if_stale=True) == "new"


async def test_get_queries_data_matching(client: QueryClient) -> None:
    """queryClient > getQueriesData > 'should return the query data for all matched queries'."""
    client.set_query_data(("k1", 1), 1)
    client.set_query_data(("k1", 2), 2)
    client.set_query_data(("k2", 2), 2)
    assert client.get_queries_data(("k1",)) == [(("k1", 1), 1), (("k1", 2), 2)]


async def test_get_queries_data_empty(client: QueryClient) -> None:
    """queryClient > getQueriesData > 'should return empty array if queries are not found'."""
    assert client.get_queries_data(("k",)) == []


async def test_get_queries_data_accepts_filters(client: QueryClient) -> None:
    """queryClient > getQueriesData > 'should accept query filters'."""
    client.set_query_data(("key", 1), 1)
    client.set_query_data(("key", 2), 2)
    first = client.query_cache.find(("key", 1))
    assert client.get_queries_data(QueryFilters(predicate=lambda q: q is first)) == [(("key", 1), 1)]


# -- fetchQuery / prefetchQuery / fetchInfiniteQuery ---------------------------------------------
async def test_fetch_query_does_not_retry_by_default(client: QueryClient) -> None:
    """queryClient > fetchQuery > 'should not retry by default'."""
    calls: list[object] = []

    async def boom(ctx: object) -> None:
        calls.append(ctx)
        raise RuntimeError("error")

    with pytest.raises(RuntimeError, match="error"):
        await client.fetch_query(("e",), boom)
    assert len(calls) == 1


async def test_fetch_query_returns_cached_data_on_hit(client: QueryClient) -> None:
    """queryClient > fetchQuery > 'should return the cached data on cache hit' (the same object)."""
    first = await client.fetch_query(("h",), returning({"v": 1}), stale_time=10)
    second = await client.fetch_query(("h",), returning({"v": 2}), stale_time=10)
    assert second is first


async def test_fetch_query_gc_time_infinity_keeps_query(client: QueryClient, clock: FakeClock) -> None:
    """queryClient > fetchQuery > 'should keep a query in cache if garbage collection time is
    Infinity'."""
    assert await client.fetch_query(("gi",), returning(1), gc_time=INFINITY) == 1
    await clock.advance(10**6)
    assert client.query_cache.find(("gi",)) is not None and client.get_query_data(("gi",)) == 1


async def test_fetch_query_does_not_force_fetch(client: QueryClient) -> None:
    """queryClient > fetchQuery > 'should not force fetch' (existing data wins over initialData)."""
    client.set_query_data(("og",), "og")
    assert await client.fetch_query(("og",), returning("new"), initial_data="initial", stale_time=100) == "og"


async def test_fetch_query_fetches_only_when_older_than_stale_time(client: QueryClient, clock: FakeClock) -> None:
    """queryClient > fetchQuery > 'should only fetch if the data is older then the given stale
    time'."""
    count = [0]

    def bump(ctx: object) -> int:
        count[0] += 1
        return count[0]

    client.set_query_data(("st",), 0)
    assert await client.fetch_query(("st",), returning(bump), stale_time=100) == 0
    await clock.advance(10)
    assert await client.fetch_query(("st",), returning(bump), stale_time=10) == 1
    assert await client.fetch_query(("st",), returning(bump), stale_time=10) == 1
    await clock.advance(10)
    assert await client.fetch_query(("st",), returning(bump), stale_time=10) == 2


async def test_fetch_query_allows_new_meta(client: QueryClient) -> None:
    """queryClient > fetchQuery > 'should allow new meta'."""
    first = await client.fetch_query(("m",), returning(lambda ctx: ctx.meta), meta={"foo": True})
    assert first == {"foo": True}
    second = await client.fetch_query(("m",), returning(lambda ctx: ctx.meta), meta={"foo": False})
    assert second == {"foo": False}


async def test_fetch_query_propagates_errors(client: QueryClient) -> None:
    """queryClient > query > 'should propagate errors' (and the query keeps the error)."""

    async def boom(ctx: object) -> None:
        raise ValueError("nope")

    with pytest.raises(ValueError):
        await client.fetch_query(("e",), boom)
    state = client.get_query_state(("e",))
    assert state is not None and state.status == "error" and isinstance(state.error, ValueError)


async def test_fetch_query_stale_time_function(client: QueryClient, clock: FakeClock) -> None:
    """queryClient > query > 'should evaluate staleTime when provided as a function'."""
    asked: list[object] = []
    client.set_query_data(("sf",), "old-data")
    await clock.advance(1)
    result = await client.fetch_query(("sf",), returning("new-data"), stale_time=lambda q: asked.append(q) or 0)
    assert result == "new-data" and len(asked) >= 1


async def test_fetch_infinite_query_returns_pages(client: QueryClient) -> None:
    """queryClient > fetchInfiniteQuery > 'should return infinite query data'."""
    result = await client.fetch_infinite_query(("inf",), returning(lambda ctx: ctx.page_param),
                                               initial_page_param=10, get_next_page_param=lambda *a: None)
    assert result == {"pages": [10], "page_params": [10]}
    assert client.get_query_data(("inf",)) == result


async def test_fetch_infinite_query_prefetches_several_pages(client: QueryClient) -> None:
    """queryClient > prefetchInfiniteQuery > 'should prefetch multiple pages'."""
    result = await client.fetch_infinite_query(
        ("inf",), returning(lambda ctx: str(ctx.page_param)), initial_page_param=10,
        get_next_page_param=lambda last, pages, last_param, params: last_param + 5, pages=3)
    assert result == {"pages": ["10", "15", "20"], "page_params": [10, 15, 20]}


async def test_fetch_infinite_query_stops_when_no_next_page(client: QueryClient) -> None:
    """queryClient > prefetchInfiniteQuery > 'should stop prefetching if getNextPageParam returns
    undefined'."""
    asked = [0]

    def next_param(last: object, pages: object, last_param: int, params: object) -> int | None:
        asked[0] += 1
        return None if last_param >= 20 else last_param + 5

    result = await client.fetch_infinite_query(("inf",), returning(lambda ctx: str(ctx.page_param)),
                                               initial_page_param=10, get_next_page_param=next_param, pages=5)
    assert result == {"pages": ["10", "15", "20"], "page_params": [10, 15, 20]}
    assert asked[0] == 3


async def test_prefetch_query_returns_none_on_error(client: QueryClient) -> None:
    """queryClient > prefetchQuery > 'should return undefined when an error is thrown'."""

    async def boom(ctx: object) -> None:
        raise RuntimeError("error")

    assert await client.prefetch_query(("e",), boom, retry=False) is None


async def test_prefetch_query_is_collected_after_gc_time(client: QueryClient, clock: FakeClock) -> None:
    """queryClient > prefetchQuery > 'should be garbage collected after gcTime if unused'."""
    await client.prefetch_query(("g",), returning("data"), gc_time=10)
    assert client.query_cache.find(("g",)) is not None
    await clock.advance(15)
    assert client.query_cache.find(("g",)) is None


async def test_remove_queries_exact(client: QueryClient) -> None:
    """queryClient > removeQueries > 'should not crash when exact is provided'."""
    await client.prefetch_query(("r",), returning("data"))
    client.remove_queries(("r",), exact=True)
    assert client.query_cache.find(("r",)) is None


# -- refetchQueries -----------------------------------------------------------------------------
async def test_refetch_queries_skips_all_disabled_observers(client: QueryClient) -> None:
    """queryClient > refetchQueries > 'should not refetch if all observers are disabled'."""
    calls: list[object] = []
    await client.fetch_query(("r",), returning("data", calls))
    unsubscribe = client.observe(("r",), returning("data", calls), enabled=False).subscribe(lambda r: None)
    await client.refetch_queries()
    unsubscribe()
    assert len(calls) == 1


async def test_refetch_queries_with_one_enabled_observer(client: QueryClient) -> None:
    """queryClient > refetchQueries > 'should refetch if at least one observer is enabled'."""
    calls: list[object] = []
    fn = returning("data", calls)
    await client.fetch_query(("r",), fn)
    u1 = client.observe(("r",), fn, enabled=False).subscribe(lambda r: None)
    u2 = client.observe(("r",), fn, refetch_on_mount=False).subscribe(lambda r: None)
    await client.refetch_queries()
    u1()
    u2()
    assert len(calls) == 2


async def test_refetch_queries_all_without_arguments(client: QueryClient) -> None:
    """queryClient > refetchQueries > 'should refetch all queries when no arguments are given'."""
    c1: list[object] = []
    c2: list[object] = []
    await client.fetch_query(("r1",), returning("d1", c1))
    await client.fetch_query(("r2",), returning("d2", c2))
    unsubscribe = client.observe(("r1",), returning("d1", c1), stale_time=INFINITY).subscribe(lambda r: None)
    await client.refetch_queries()
    unsubscribe()
    assert len(c1) == 2 and len(c2) == 2


async def test_refetch_queries_active_and_fresh(client: QueryClient) -> None:
    """queryClient > refetchQueries > 'should be able to refetch all fresh queries'."""
    c1: list[object] = []
    c2: list[object] = []
    await client.fetch_query(("r1",), returning("d1", c1))
    await client.fetch_query(("r2",), returning("d2", c2))
    unsubscribe = client.observe(("r1",), returning("d1", c1), stale_time=INFINITY).subscribe(lambda r: None)
    await client.refetch_queries(type="active", stale=False)
    unsubscribe()
    assert len(c1) == 2 and len(c2) == 1


async def test_refetch_queries_stale_uses_query_stale_time_without_observers(client: QueryClient) -> None:
    """queryClient > refetchQueries > 'should be able to refetch all stale queries'."""
    c1: list[object] = []
    c2: list[object] = []
    await client.fetch_query(("r1",), returning("d1", c1))
    await client.fetch_query(("r2",), returning("d2", c2), stale_time=60)
    unsubscribe = client.observe(("r1",), returning("d1", c1)).subscribe(lambda r: None)
    await settle()
    await client.invalidate_queries(("r1",), refetch_type="none")
    await client.refetch_queries(stale=True)
    unsubscribe()
    assert len(c1) == 3  # fetch_query, mount, refetch
    # DIFFERENCE: without observers a query is stale by its own stale_time (TanStack: only when
    # invalidated or without data, so a query fetched with stale_time 0 would be skipped too).
    # See docs/queries.md, "Differences from TanStack Query", find_all(stale=...).
    assert len(c2) == 1


async def test_refetch_queries_active_inactive_and_all(client: QueryClient) -> None:
    """queryClient > refetchQueries > 'should be able to refetch only active queries', '... only
    inactive queries' and '... all active and inactive queries (type: "all")'."""
    c1: list[object] = []
    c2: list[object] = []
    await client.fetch_query(("r1",), returning("d1", c1))
    await client.fetch_query(("r2",), returning("d2", c2))
    unsubscribe = client.observe(("r1",), returning("d1", c1), stale_time=INFINITY).subscribe(lambda r: None)
    await client.refetch_queries(type="active")
    assert (len(c1), len(c2)) == (2, 1)
    await client.refetch_queries(type="inactive")
    assert (len(c1), len(c2)) == (2, 2)
    await client.refetch_queries(type="all")
    assert (len(c1), len(c2)) == (3, 3)
    unsubscribe()


async def test_refetch_queries_throw_on_error(client: QueryClient) -> None:
    """queryClient > refetchQueries > 'should throw an error if throwOnError option is set to true'."""

    async def boom(ctx: object) -> None:
        raise RuntimeError("error")

    await client.prefetch_query(("e",), boom, retry=False)
    await client.refetch_queries(("e",))  # errors stay in the state by default
    with pytest.raises(RuntimeError, match="error"):
        await client.refetch_queries(("e",), throw_on_error=True)


async def test_refetch_queries_offline_network_mode_always(client: QueryClient) -> None:
    """queryClient > refetchQueries > 'should refetch if query we are offline but query networkMode
    is always'."""
    calls: list[object] = []
    client.set_query_defaults(("al",), network_mode="always")
    await client.fetch_query(("al",), returning("d", calls))
    client.online_manager.set_online(False)
    await client.refetch_queries(("al",))
    assert len(calls) == 2
    client.online_manager.set_online(True)


# -- invalidateQueries ----------------------------------------------------------------------------
async def _two_queries(client: QueryClient, **observer_options: object) -> tuple[list[object], list[object], Any]:
    c1: list[object] = []
    c2: list[object] = []
    await client.fetch_query(("i1",), returning("d1", c1))
    await client.fetch_query(("i2",), returning("d2", c2))
    observer = client.observe(("i1",), returning("d1", c1), stale_time=INFINITY, **observer_options)
    return c1, c2, observer


async def test_invalidate_refetches_active_by_default(client: QueryClient) -> None:
    """queryClient > invalidateQueries > 'should refetch active queries by default'."""
    c1, c2, observer = await _two_queries(client)
    unsubscribe = observer.subscribe(lambda r: None)
    await client.invalidate_queries(("i1",))
    unsubscribe()
    assert (len(c1), len(c2)) == (2, 1)


async def test_invalidate_skips_inactive_by_default(client: QueryClient) -> None:
    """queryClient > invalidateQueries > 'should not refetch inactive queries by default'."""
    c1, c2, observer = await _two_queries(client, enabled=False)
    unsubscribe = observer.subscribe(lambda r: None)
    await client.invalidate_queries(("i1",))
    unsubscribe()
    assert (len(c1), len(c2)) == (1, 1)
    assert client.get_query_state(("i1",)).is_invalidated  # type: ignore[union-attr]


async def test_invalidate_refetch_type_none(client: QueryClient) -> None:
    """queryClient > invalidateQueries > 'should not refetch active queries when "refetch" is
    "none"'."""
    c1, c2, observer = await _two_queries(client)
    unsubscribe = observer.subscribe(lambda r: None)
    await client.invalidate_queries(("i1",), refetch_type="none")
    unsubscribe()
    assert (len(c1), len(c2)) == (1, 1)


async def test_invalidate_refetch_type_inactive(client: QueryClient) -> None:
    """queryClient > invalidateQueries > 'should refetch inactive queries when "refetch" is
    "inactive"'."""
    c1, c2, observer = await _two_queries(client, refetch_on_mount=False)
    observer.subscribe(lambda r: None)()
    await client.invalidate_queries(("i1",), refetch_type="inactive")
    assert (len(c1), len(c2)) == (2, 1)


async def test_invalidate_refetch_type_all(client: QueryClient) -> None:
    """queryClient > invalidateQueries > 'should refetch active and inactive queries when "refetch"
    is "all"'."""
    c1, c2, observer = await _two_queries(client)
    unsubscribe = observer.subscribe(lambda r: None)
    await client.invalidate_queries(refetch_type="all")
    unsubscribe()
    assert (len(c1), len(c2)) == (2, 2)


async def test_invalidate_all_skips_disabled_inactive(client: QueryClient) -> None:
    """queryClient > invalidateQueries > 'should not refetch disabled inactive queries even if
    "refetchType" is "all"'."""
    calls: list[object] = []
    client.observe(("di",), returning("d", calls), stale_time=INFINITY, enabled=False).subscribe(lambda r: None)()
    await client.invalidate_queries(refetch_type="all")
    assert calls == []


async def test_invalidate_cancels_fetch_in_flight(client: QueryClient) -> None:
    """queryClient > invalidateQueries > 'should cancel ongoing fetches if cancelRefetch option is
    set (default value)'."""
    server = Server()
    observer = client.observe(("cf",), server.fn, initial_data=1)
    unsubscribe = observer.subscribe(lambda r: None)
    await settle()
    assert len(server.calls) == 1
    refetch = asyncio.create_task(client.refetch_queries())
    await settle()
    assert len(server.calls) == 2 and server.calls[0].cancelled()
    server.release(5)  # the first call was cancelled with its fetch
    await refetch
    assert client.get_query_data(("cf",)) == 5
    unsubscribe()


# -- resetQueries ---------------------------------------------------------------------------------
async def test_reset_queries_notifies_cache_listeners(client: QueryClient) -> None:
    """queryClient > resetQueries > 'should notify listeners when a query is reset'."""
    await client.prefetch_query(("r",), returning("data"))
    events: list[object] = []
    client.query_cache.subscribe(events.append)
    await client.reset_queries(("r",))
    assert events


async def test_reset_queries_resets_state_but_keeps_shared_data(client: QueryClient) -> None:
    """queryClient > resetQueries > 'should reset query'."""
    await client.prefetch_query(("r",), returning("data"))
    await client.reset_queries(("r",))
    state = client.get_query_state(("r",))
    assert state is not None and state.fetch_status == "idle" and state.data_updated_at == 0
    # DIFFERENCE: the document data is shared with peers, so a reset keeps it (TanStack: data
    # undefined, status pending). See docs/queries.md, "Differences from TanStack Query".
    assert state.data == "data" and state.status == "success"


async def test_reset_queries_refetches_active_only(client: QueryClient) -> None:
    """queryClient > resetQueries > 'should refetch all active queries'."""
    c1: list[object] = []
    c2: list[object] = []
    u1 = client.observe(("a1",), returning("d1", c1)).subscribe(lambda r: None)
    u2 = client.observe(("a2",), returning("d2", c2), enabled=False).subscribe(lambda r: None)
    await settle()
    await client.reset_queries()
    u1()
    u2()
    assert (len(c1), len(c2)) == (2, 0)


# -- focusManager and onlineManager ---------------------------------------------------------------
async def _paused_mutation(client: QueryClient, order: list[str], name: str, **options: Any) -> Any:
    async def send(variables: object, ctx: object) -> str:
        order.append(f"{name} start")
        await asyncio.sleep(0)
        order.append(f"{name} end")
        return name

    return client.observe_mutation(mutation_fn=send, **options)


async def test_online_resumes_paused_mutations(client: QueryClient) -> None:
    """queryClient > focusManager and onlineManager > 'should resume paused mutations when coming
    online'."""
    order: list[str] = []
    client.online_manager.set_online(False)
    o1 = await _paused_mutation(client, order, "1")
    o2 = await _paused_mutation(client, order, "2")
    m1, m2 = o1.mutate(), o2.mutate()
    await settle()
    assert o1.get_current_result().is_paused and o2.get_current_result().is_paused
    client.online_manager.set_online(True)
    assert await asyncio.wait_for(m1.result(), 2) == "1"
    assert await asyncio.wait_for(m2.result(), 2) == "2"


async def test_online_resumes_paused_mutations_one_at_a_time(client: QueryClient) -> None:
    """queryClient > focusManager and onlineManager > 'should resume paused mutations in parallel'."""
    order: list[str] = []
    client.online_manager.set_online(False)
    m1 = (await _paused_mutation(client, order, "1")).mutate()
    m2 = (await _paused_mutation(client, order, "2")).mutate()
    await settle()
    client.online_manager.set_online(True)
    await asyncio.wait_for(asyncio.gather(m1.result(), m2.result()), 2)
    # DIFFERENCE: paused mutations resume one at a time, oldest first (TanStack: in parallel
    # unless scoped). See docs/queries.md, "Differences from TanStack Query".
    assert order == ["1 start", "1 end", "2 start", "2 end"]


async def test_scoped_paused_mutations_resume_in_order(client: QueryClient) -> None:
    """queryClient > focusManager and onlineManager > 'should resume paused mutations one after the
    other when in the same scope when invoked manually at the same time'."""
    order: list[str] = []
    client.online_manager.set_online(False)
    m1 = (await _paused_mutation(client, order, "1", scope="s")).mutate()
    m2 = (await _paused_mutation(client, order, "2", scope="s")).mutate()
    await settle()
    assert m1.state.is_paused and m2.state.is_paused
    client.online_manager.set_online(True)
    resume = asyncio.create_task(client.resume_paused_mutations())
    await asyncio.wait_for(asyncio.gather(m1.result(), m2.result(), resume), 2)
    assert order == ["1 start", "1 end", "2 start", "2 end"]


async def test_resume_while_offline_keeps_mutations_paused(client: QueryClient) -> None:
    """queryClient > focusManager and onlineManager > 'should resumePausedMutations when coming
    online after having called resumePausedMutations while offline'."""
    order: list[str] = []
    client.online_manager.set_online(False)
    observer = await _paused_mutation(client, order, "1")
    mutation = observer.mutate()
    await client.resume_paused_mutations()
    assert observer.get_current_result().is_paused and order == []
    client.online_manager.set_online(True)
    assert await asyncio.wait_for(mutation.result(), 2) == "1"


async def test_unmounted_client_ignores_focus_and_online(clock: FakeClock) -> None:
    """queryClient > focusManager and onlineManager > 'should not notify queryCache and
    mutationCache after multiple mounts/unmounts'."""
    c = QueryClient(clock=clock)
    calls: list[object] = []
    c.mount()
    c.mount()
    c.unmount()
    c.unmount()
    unsubscribe = c.observe(("f",), returning("d", calls)).subscribe(lambda r: None)
    await settle()
    assert len(calls) == 1
    c.focus_manager.signal_focus()
    c.online_manager.set_online(False)
    c.online_manager.set_online(True)
    await settle()
    assert len(calls) == 1
    unsubscribe()
    await c.close()


async def test_mounted_client_refetches_stale_queries_on_focus(client: QueryClient) -> None:
    """queryClient > focusManager and onlineManager > 'should notify queryCache and mutationCache
    if focused' (stale observed queries refetch)."""
    calls: list[object] = []
    unsubscribe = client.observe(("f",), returning("d", calls)).subscribe(lambda r: None)
    await settle()
    client.focus_manager.set_focused(False)
    await settle()
    assert len(calls) == 1
    client.focus_manager.set_focused(True)
    await settle()
    assert len(calls) == 2
    unsubscribe()


# -- setMutationDefaults ----------------------------------------------------------------------------
async def test_set_mutation_defaults_later_call_wins(client: QueryClient) -> None:
    """queryClient > setMutationDefaults > 'should update existing mutation defaults'."""
    client.set_mutation_defaults(("m",), retry=1)
    client.set_mutation_defaults(("m",), retry=False)
    assert client.get_mutation_defaults(("m",))["retry"] is False


async def test_mutation_defaults_match_only_their_key(client: QueryClient) -> None:
    """queryClient > setMutationDefaults > 'should return only matching defaults when multiple
    mutation defaults are set'."""
    client.set_mutation_defaults(("m1",), retry=1)
    client.set_mutation_defaults(("m2",), retry=2)
    assert client.get_mutation_defaults(("m1",)) == {"retry": 1}
    assert client.get_mutation_defaults(("m2",)) == {"retry": 2}


async def test_client_stays_mounted_until_every_mount_is_undone(clock: FakeClock) -> None:
    """queryClient > focusManager and onlineManager > 'should notify queryCache and mutationCache
    after multiple mounts and single unmount'."""
    c = QueryClient(clock=clock)
    calls: list[object] = []
    c.mount()
    c.mount()
    c.unmount()
    unsubscribe = c.observe(("f",), returning("d", calls)).subscribe(lambda r: None)
    await settle()
    c.focus_manager.signal_focus()
    await settle()
    assert len(calls) == 2
    unsubscribe()
    c.unmount()
    await c.close()


async def test_remove_queries_keeps_shared_document_data(client: QueryClient) -> None:
    """queryClient > removeQueries: the query leaves the cache."""
    await client.prefetch_query(("rm",), returning("data"))
    client.remove_queries(("rm",))
    assert client.query_cache.find(("rm",)) is None
    # DIFFERENCE: the data lives in a CRDT document shared with peers and stays there (TanStack:
    # the data is gone with the query). See docs/queries.md, "Differences from TanStack Query".
    assert client.get_query_data(("rm",)) == "data"


async def test_peer_change_updates_data_not_freshness(client: QueryClient, clock: FakeClock) -> None:
    """queryClient > setQueryData sets dataUpdatedAt; a write that arrives from a peer does not."""
    peer = Replica(client_id=99)
    await client.fetch_query(("peer",), returning({"v": 1}), stale_time=10)
    at = client.get_query_state(("peer",)).data_updated_at  # type: ignore[union-attr]
    await clock.advance(5)
    peer.apply_update("peer", client.replica.get_update("peer"))
    peer.write(("peer",), {"v": 2})
    client.replica.apply_update("peer", peer.get_update("peer"), origin=remote_origin("p"))
    state = client.get_query_state(("peer",))
    assert state is not None and state.data == {"v": 2}
    # DIFFERENCE: a peer's change is not this query's source of truth, so data_updated_at (and
    # staleness) stays (TanStack has no peers). See docs/queries.md.
    assert state.data_updated_at == at


async def test_focus_does_not_resume_paused_mutations(client: QueryClient) -> None:
    """queryClient > focusManager and onlineManager > 'should notify queryCache and mutationCache
    if focused' (TanStack resumes paused mutations on focus too)."""
    order: list[str] = []
    observer = await _paused_mutation(client, order, "1")
    client.online_manager.set_online(False)
    mutation = observer.mutate()
    await settle()
    client.online_manager._value = True  # online again without telling anyone (no event)
    client.focus_manager.signal_focus()
    await settle()
    # DIFFERENCE: only reconnect and resume_paused_mutations() resume paused mutations, so
    # mutations restored from the outbox are never sent before the app asks. See docs/queries.md.
    assert order == [] and mutation.state.is_paused
    await client.resume_paused_mutations()
    assert await asyncio.wait_for(mutation.result(), 2) == "1"
