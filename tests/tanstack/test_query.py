"""Ported from TanStack query-core ``query.test.tsx`` (behaviour, not code)."""

from __future__ import annotations

import asyncio

import pytest

from crdtsync import INFINITY, FakeClock, QueryClient
from crdtsync.errors import InvalidValueError, QueryCancelledError, QueryNotFoundError
from crdtsync.query import QueryFunctionContext
from tests.tanstack.conftest import Server, returning, settle


def failing(calls: list[float], clock: FakeClock, *, succeed_on: int = 0) -> object:
    async def fn(ctx: QueryFunctionContext) -> str:
        calls.append(clock.now())
        if succeed_on and len(calls) >= succeed_on:
            return "ok"
        raise RuntimeError(f"fail {len(calls)}")

    return fn


async def test_retries_pause_while_unfocused(client: QueryClient, clock: FakeClock) -> None:
    """query: 'should continue retry after focus regain'."""
    calls: list[float] = []
    client.focus_manager.set_focused(False)
    task = asyncio.create_task(client.fetch_query(("rf",), failing(calls, clock, succeed_on=2),
                                                  retry=1, retry_delay=1))
    await clock.advance(5)
    assert len(calls) == 1
    state = client.get_query_state(("rf",))
    assert state is not None and state.fetch_status == "paused" and state.fetch_failure_count == 1
    client.focus_manager.set_focused(True)
    assert await asyncio.wait_for(task, 2) == "ok"
    assert len(calls) == 2



async def test_retries_stop_after_last_observer_unsubscribes(client: QueryClient, clock: FakeClock) -> None:
    """query: 'should stop retry when unsubscribing' (the attempt in flight finishes, no more
    attempts follow and the query ends in error)."""
    calls: list[float] = []
    observer = client.observe(("ru",), failing(calls, clock), retry=3, retry_delay=1)
    unsubscribe = observer.subscribe(lambda r: None)
    await settle()
    assert len(calls) == 1
    unsubscribe()
    await clock.advance(10)
    assert len(calls) == 1
    state = client.get_query_state(("ru",))
    assert state is not None and state.status == "error" and state.fetch_status == "idle"
    assert isinstance(state.error, RuntimeError)


async def test_failed_background_refetch_marks_fresh_data_invalidated(client: QueryClient, clock: FakeClock) -> None:
    """query: 'should be stale if a background refetch failed' (the error marks existing data
    invalidated, so the next focus refetches although stale_time has not passed)."""
    calls: list[float] = []
    answers: list[object] = ["v", RuntimeError("down"), "v2"]

    async def fn(ctx: QueryFunctionContext) -> object:
        calls.append(clock.now())
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    observer = client.observe(("bg",), fn, stale_time=60, retry=0)
    unsubscribe = observer.subscribe(lambda r: None)
    await settle()
    await observer.refetch()
    state = client.get_query_state(("bg",))
    assert state is not None and state.status == "error" and state.is_invalidated
    assert observer.get_current_result().is_stale
    client.focus_manager.signal_focus()
    await settle()
    assert len(calls) == 3 and client.get_query_data(("bg",)) == "v2"
    unsubscribe()


async def test_retries_continue_after_reconnect(client: QueryClient, clock: FakeClock) -> None:
    """query: 'should continue retry after reconnect and resolve all promises'."""
    calls: list[float] = []
    task = asyncio.create_task(client.fetch_query(("rr",), failing(calls, clock, succeed_on=2),
                                                  retry=1, retry_delay=1))
    await settle()
    client.online_manager.set_online(False)
    await clock.advance(5)
    assert len(calls) == 1
    assert client.get_query_state(("rr",)).fetch_status == "paused"  # type: ignore[union-attr]
    second = asyncio.create_task(client.fetch_query(("rr",), failing(calls, clock, succeed_on=2)))
    client.online_manager.set_online(True)
    assert await asyncio.wait_for(task, 2) == "ok"
    assert await asyncio.wait_for(second, 2) == "ok"
    assert len(calls) == 2


async def test_cancelling_a_paused_query_raises_cancelled(client: QueryClient) -> None:
    """query: 'should throw a QueryCancelledError when a paused query is cancelled'."""
    client.online_manager.set_online(False)
    task = asyncio.create_task(client.fetch_query(("pc",), returning("d")))
    await settle()
    assert client.get_query_state(("pc",)).fetch_status == "paused"  # type: ignore[union-attr]
    await client.cancel_queries(("pc",))
    with pytest.raises(QueryCancelledError):
        await asyncio.wait_for(task, 2)
    client.online_manager.set_online(True)


async def test_query_fn_receives_key_meta_and_cancelled(client: QueryClient) -> None:
    """query: 'should provide context to queryFn' (key, meta; the abort signal is ``cancelled``)."""
    seen: list[QueryFunctionContext] = []
    await client.fetch_query(("ctx", 1), returning("d", seen), meta={"a": 1})
    ctx = seen[0]
    assert ctx.query_key == ("ctx", 1) and ctx.meta == {"a": 1} and ctx.cancelled() is False


async def test_cancelled_flag_turns_true_when_cancelled(client: QueryClient) -> None:
    """query: 'should call the abort signal when the query is cancelled' (``ctx.cancelled()``)."""
    server = Server()
    task = asyncio.create_task(client.prefetch_query(("ab",), server.fn))
    await settle()
    await client.cancel_queries(("ab",))
    await task
    assert server.calls[0].cancelled() is True


async def test_cancelled_query_can_be_refetched(client: QueryClient) -> None:
    """query: 'should be able to refetch a cancelled query'."""
    server = Server()
    task = asyncio.create_task(client.prefetch_query(("rc",), server.fn))
    await settle()
    await client.cancel_queries(("rc",))
    await task
    again = asyncio.create_task(client.fetch_query(("rc",), server.fn))
    await settle()
    server.release("data")
    assert await again == "data"
    assert len(server.calls) == 2


async def test_cancelling_a_resolved_query_has_no_effect(client: QueryClient) -> None:
    """query: 'cancelling a resolved query should not have any effect'."""
    await client.fetch_query(("done",), returning("data"))
    before = client.get_query_state(("done",))
    await client.cancel_queries(("done",))
    assert client.get_query_state(("done",)) == before


async def test_cancelling_a_rejected_query_has_no_effect(client: QueryClient) -> None:
    """query: 'cancelling a rejected query should not have any effect'."""

    async def boom(ctx: object) -> None:
        raise RuntimeError("x")

    await client.prefetch_query(("rej",), boom)
    before = client.get_query_state(("rej",))
    await client.cancel_queries(("rej",))
    state = client.get_query_state(("rej",))
    assert state == before and state is not None and state.status == "error"


async def test_previous_status_kept_while_refetching(client: QueryClient) -> None:
    """query: 'the previous query status should be kept when refetching'."""

    async def boom(ctx: object) -> None:
        raise RuntimeError("x")

    await client.prefetch_query(("ps",), boom)
    assert client.get_query_state(("ps",)).status == "error"  # type: ignore[union-attr]
    server = Server()
    task = asyncio.create_task(client.prefetch_query(("ps",), server.fn, retry=0))
    await settle()
    state = client.get_query_state(("ps",))
    # No data yet: like TanStack, the fetch of a query without data goes back to pending.
    assert state is not None and state.status == "pending" and state.fetch_status == "fetching"
    server.fail(RuntimeError("again"))
    await task
    assert client.get_query_state(("ps",)).status == "error"  # type: ignore[union-attr]


async def test_gc_time_zero_removes_query_at_unsubscribe(client: QueryClient, clock: FakeClock) -> None:
    """query: 'queries with gcTime 0 should be removed immediately after unsubscribing'."""
    observer = client.observe(("g0",), returning("d"), gc_time=0)
    unsubscribe = observer.subscribe(lambda r: None)
    await settle()
    assert client.query_cache.find(("g0",)) is not None
    unsubscribe()
    await clock.advance(0)
    assert client.query_cache.find(("g0",)) is None


async def test_query_collected_after_unsubscribe(client: QueryClient, clock: FakeClock) -> None:
    """query: 'should be garbage collected when unsubscribed to'."""
    unsubscribe = client.observe(("g",), returning("d"), gc_time=10).subscribe(lambda r: None)
    await settle()
    unsubscribe()
    await clock.advance(9)
    assert client.query_cache.find(("g",)) is not None
    await clock.advance(2)
    assert client.query_cache.find(("g",)) is None


async def test_query_collected_later_when_fetching(client: QueryClient, clock: FakeClock) -> None:
    """query: 'should be garbage collected later when unsubscribed and query is fetching'."""
    server = Server()
    unsubscribe = client.observe(("gf",), server.fn, gc_time=10).subscribe(lambda r: None)
    await settle()
    unsubscribe()
    await clock.advance(20)
    assert client.query_cache.find(("gf",)) is not None  # still fetching
    server.release("d")
    await settle()
    await clock.advance(11)
    assert client.query_cache.find(("gf",)) is None


async def test_query_not_collected_while_observed(client: QueryClient, clock: FakeClock) -> None:
    """query: 'should not be garbage collected unless there are no subscribers'."""
    unsubscribe = client.observe(("gs",), returning("d"), gc_time=1).subscribe(lambda r: None)
    await clock.advance(100)
    assert client.query_cache.find(("gs",)) is not None
    unsubscribe()
    await clock.advance(2)
    assert client.query_cache.find(("gs",)) is None


async def test_observer_count(client: QueryClient) -> None:
    """query: 'should return proper count of observers'."""
    o1 = client.observe(("oc",), returning("d"))
    o2 = client.observe(("oc",), returning("d"))
    u1 = o1.subscribe(lambda r: None)
    u2 = o2.subscribe(lambda r: None)
    query = client.query_cache.find(("oc",))
    assert query is not None and len(query.observers) == 2
    u1()
    assert len(query.observers) == 1
    u2()
    assert query.observers == []


async def test_query_stores_and_updates_meta(client: QueryClient) -> None:
    """query: 'stores meta object in query' and 'updates meta object on change'."""
    await client.fetch_query(("meta",), returning("d"), meta={"v": 1})
    query = client.query_cache.find(("meta",))
    assert query is not None and query.options.meta == {"v": 1}
    await client.fetch_query(("meta",), returning("d"), meta={"v": 2})
    assert query.options.meta == {"v": 2}


async def test_default_meta(clock: FakeClock) -> None:
    """query: 'can use default meta'."""
    c = QueryClient(clock=clock, default_options={"meta": {"d": True}})
    await c.fetch_query(("meta",), returning("d"))
    query = c.query_cache.find(("meta",))
    assert query is not None and query.options.meta == {"d": True}
    await c.close()


async def test_observer_refetches_on_reconnect(client: QueryClient) -> None:
    """query: 'should refetch the observer when online method is called'."""
    calls: list[object] = []
    unsubscribe = client.observe(("on",), returning("d", calls)).subscribe(lambda r: None)
    await settle()
    client.online_manager.set_online(False)
    client.online_manager.set_online(True)
    await settle()
    assert len(calls) == 2
    unsubscribe()


async def test_adding_an_observer_twice_counts_once(client: QueryClient) -> None:
    """query: 'should not add an existing observer'."""
    observer = client.observe(("ao",), returning("d"))
    query = client.query_cache.find(("ao",))
    assert query is not None
    query.add_observer(observer)
    query.add_observer(observer)
    assert query.observers == [observer]
    query.remove_observer(observer)
    query.remove_observer(observer)  # 'should not try to remove an observer that does not exist'
    assert query.observers == []


async def test_fetch_while_fetching_does_not_restart(client: QueryClient) -> None:
    """query: 'fetch should not dispatch "fetch" query is already fetching'."""
    server = Server()
    events: list[object] = []
    first = asyncio.create_task(client.fetch_query(("ff",), server.fn))
    await settle()
    client.query_cache.subscribe(events.append)
    second = asyncio.create_task(client.fetch_query(("ff",), server.fn))
    await settle()
    assert len(server.calls) == 1
    assert not [e for e in events if type(getattr(e, "action", None)).__name__ == "Fetch"]
    server.release("d")
    assert await first == "d" and await second == "d"


async def test_fetch_without_query_fn_errors(client: QueryClient) -> None:
    """query: 'fetch should throw an error if the queryFn is not defined'."""
    with pytest.raises(QueryNotFoundError):
        await client.fetch_query(("nofn",))
    assert client.get_query_state(("nofn",)).status == "error"  # type: ignore[union-attr]


async def test_unstorable_result_is_an_error(client: QueryClient) -> None:
    """query: 'should dispatch an error if the queryFn returns undefined data' (what cannot be
    stored is an error of the query)."""
    with pytest.raises(InvalidValueError):
        await client.fetch_query(("bad",), returning({"when": object()}))
    assert client.get_query_state(("bad",)).status == "error"  # type: ignore[union-attr]



async def test_gc_timer_restarts_after_each_fetch(client: QueryClient, clock: FakeClock) -> None:
    """query: the gc time counts from the last fetch (TanStack's fetch schedules gc once done)."""
    await client.prefetch_query(("gr",), returning("d"), gc_time=10)
    await clock.advance(8)
    await client.prefetch_query(("gr",), returning("d"), gc_time=10)
    await clock.advance(5)
    assert client.query_cache.find(("gr",)) is not None
    await clock.advance(6)
    assert client.query_cache.find(("gr",)) is None


async def test_query_uses_longest_gc_time_seen(client: QueryClient, clock: FakeClock) -> None:
    """query: 'should use the longest garbage collection time it has seen'."""
    await client.prefetch_query(("lg",), returning("d"), gc_time=100)
    await client.prefetch_query(("lg",), returning("d"), gc_time=10)  # fetches again
    await client.prefetch_query(("lg",), returning("d"), gc_time=10, stale_time=INFINITY)
    await clock.advance(50)
    assert client.query_cache.find(("lg",)) is not None
    await clock.advance(60)
    assert client.query_cache.find(("lg",)) is None


async def test_query_fn_returning_none_stores_null(client: QueryClient) -> None:
    """query: 'fetch should dispatch an error if the queryFn returns undefined data'."""
    assert await client.fetch_query(("none",), returning(None)) is None
    state = client.get_query_state(("none",))
    # DIFFERENCE: Python has no undefined; None is JSON null and is stored as data (TanStack: an
    # error). See docs/queries.md, "Differences from TanStack Query", query data values.
    assert state is not None and state.status == "success" and state.has_data
