"""Query (crdtsync/query/query.py) on its own: its state changes only through the reducer, its
data follows the document, its fetch uses the injected writer and the shared retryer, and its
gc timer removes it from its cache.

The queries are built by a QueryCache for a QueryClient (the host that gives them a replica, a
clock and a notify manager), but every call here is on the Query itself."""

from __future__ import annotations

import asyncio
import dataclasses
import random
from typing import Any

import pytest

from crdtsync import FakeClock, QueryClient, SystemClock
from crdtsync.errors import QueryNotFoundError
from crdtsync.keys import hash_key
from crdtsync.origins import FETCH, LOCAL
from crdtsync.query.events import CacheEvent, QueryUpdated
from crdtsync.query.options import QueryFunctionContext, QueryOptions
from crdtsync.query.query import Query
from crdtsync.query.state import Action, Continue, DataChanged, Error, Failed, Fetch, Pause, Success
from crdtsync.values import MISSING


def build(client: QueryClient, key: tuple[Any, ...], **options: Any) -> Query:
    return client.query_cache.build(client, QueryOptions(query_key=key, **options))


def record(client: QueryClient, query: Query) -> list[Action]:
    actions: list[Action] = []

    def on_event(event: CacheEvent) -> None:
        if isinstance(event, QueryUpdated) and event.query is query:
            actions.append(event.action)

    client.query_cache.subscribe(on_event)
    return actions


async def test_a_new_query_reads_what_the_document_already_holds(client: QueryClient) -> None:
    client.replica.write(("todo", 1), {"title": "a"})
    q = build(client, ("todo", 1))
    assert q.state.data == {"title": "a"} and q.state.status == "success"
    assert q.state.data_updated_at == 0.0  # not fetched by this query: stale
    empty = build(client, ("todo", 2))
    assert empty.state.data is MISSING and empty.state.status == "pending"


async def test_initial_data_is_written_and_dated(client: QueryClient, clock: FakeClock) -> None:
    q = build(client, ("todo", 3), initial_data=lambda: {"title": "init"}, initial_data_updated_at=5.0)
    assert client.replica.read(("todo", 3)) == {"title": "init"}
    assert (q.state.status, q.state.data_updated_at) == ("success", 5.0)


async def test_set_data_writes_the_document_and_dispatches_success(client: QueryClient, clock: FakeClock) -> None:
    q = build(client, ("todo", 1))
    actions = record(client, q)
    stored = q.set_data({"title": "a", "tags": ["x"]}, origin=LOCAL)
    assert client.replica.read(("todo", 1)) == {"title": "a", "tags": ["x"]}
    assert actions == [Success(stored, clock.now(), False)]
    again = q.set_data({"title": "b", "tags": ["x"]}, updated_at=7.0)
    assert again["tags"] is stored["tags"]  # structural sharing: the unchanged part is the same object
    assert q.state.data_updated_at == 7.0


async def test_a_change_of_the_document_by_anyone_else_is_a_data_changed(client: QueryClient) -> None:
    q = build(client, ("todo", 1))
    q.set_data({"title": "a"})
    dated = q.state.data_updated_at
    actions = record(client, q)
    client.replica.write(("todo", 1), {"title": "peer"})
    assert actions == [DataChanged({"title": "peer"})]
    assert q.state.data_updated_at == dated
    client.replica.write(("todo", 1), {"title": "peer"})  # no change: no action
    assert len(actions) == 1


async def test_the_fetch_path_goes_through_the_injected_writer(clock: FakeClock) -> None:
    client = QueryClient(clock=clock)
    written: list[tuple[str, Any]] = []

    def writer(query: Query, data: Any) -> None:
        written.append((query.query_hash, data))
        query.write_data({**data, "via": "writer"}, origin=FETCH)

    client.query_cache.set_fetch_writer(writer)
    q = build(client, ("todo", 1))
    assert q.set_data({"title": "f"}, origin=FETCH) == {"title": "f", "via": "writer"}
    assert written == [(hash_key(("todo", 1)), {"title": "f"})]
    q.set_data({"title": "local"}, origin=LOCAL)  # a local write does not go through it
    assert len(written) == 1 and client.replica.read(("todo", 1)) == {"title": "local"}
    await client.close()


async def test_fetch_dispatches_fetch_then_success_and_deduplicates(client: QueryClient, clock: FakeClock) -> None:
    gate = asyncio.Event()
    calls: list[QueryFunctionContext] = []

    async def fn(ctx: QueryFunctionContext) -> Any:
        calls.append(ctx)
        await gate.wait()
        return {"n": len(calls)}

    q = build(client, ("n",), query_fn=fn, meta={"m": 1})
    actions = record(client, q)
    first = asyncio.create_task(q.fetch())
    second = asyncio.create_task(q.fetch())
    await clock.settle()
    assert q.is_fetching() and q.state.fetch_status == "fetching"
    gate.set()
    assert await first == await second == {"n": 1}
    assert len(calls) == 1 and calls[0].meta == {"m": 1} and calls[0].query_key == ("n",)
    assert [type(a) for a in actions] == [Fetch, Success]
    assert not q.is_fetching() and q.state.fetch_status == "idle"


async def test_fetch_retries_through_the_retryer_then_errors(client: QueryClient, clock: FakeClock) -> None:
    boom = RuntimeError("down")

    async def fn(ctx: QueryFunctionContext) -> Any:
        raise boom

    q = build(client, ("r",), query_fn=fn, retry=2, retry_delay=3.0)
    actions = record(client, q)
    task = asyncio.create_task(q.fetch())
    await clock.settle()
    assert actions == [Fetch(), Failed(1, boom)]
    await clock.advance(3)
    assert actions[-1] == Failed(2, boom)
    await clock.advance(3)
    with pytest.raises(RuntimeError):
        await task
    assert actions[-1] == Error(boom, clock.now())
    assert (q.state.status, q.state.fetch_failure_count) == ("error", 3)


async def test_fetch_pauses_offline_and_continues_online(client: QueryClient, clock: FakeClock) -> None:
    async def fn(ctx: QueryFunctionContext) -> Any:
        return 1

    client.online_manager.set_online(False)
    q = build(client, ("o",), query_fn=fn)
    actions = record(client, q)
    task = asyncio.create_task(q.fetch())
    await clock.settle()
    assert actions == [Fetch(paused=True)] and q.state.fetch_status == "paused"
    client.online_manager.set_online(True)
    assert await task == 1
    assert [type(a) for a in actions] == [Fetch, Continue, Success]
    assert Pause() not in actions  # already paused by Fetch: no second Pause


async def test_a_retry_waits_for_focus_and_cancel_retry_there_ends_it(client: QueryClient, clock: FakeClock) -> None:
    """The gate pauses a retry while unfocused; the last observer leaving during that pause
    (cancel_retry) ends the fetch in the last error, without another attempt."""
    boom = RuntimeError("down")
    calls: list[int] = []

    async def fn(ctx: QueryFunctionContext) -> Any:
        calls.append(1)
        raise boom

    observer = client.observe(("f",), fn, retry=3, retry_delay=1.0)  # not subscribed: no fetch of its own
    q = client.query_cache.find(("f",))
    assert q is not None
    q.add_observer(observer)
    actions = record(client, q)
    client.focus_manager.set_focused(False)
    task = asyncio.create_task(q.fetch())
    await clock.advance(5)
    assert actions == [Fetch(), Failed(1, boom), Pause()] and q.state.fetch_status == "paused"
    q.remove_observer(observer)
    client.focus_manager.set_focused(True)
    with pytest.raises(RuntimeError):
        await task
    assert len(calls) == 1
    assert actions[-2:] == [Continue(), Error(boom, clock.now())]


async def test_a_query_without_a_function_fails_typed(client: QueryClient) -> None:
    q = build(client, ("none",), retry=0)
    with pytest.raises(QueryNotFoundError):
        await q.fetch()
    assert q.state.status == "error"


async def test_cancel_with_revert_restores_the_metadata(client: QueryClient, clock: FakeClock) -> None:
    gate = asyncio.Event()

    async def fn(ctx: QueryFunctionContext) -> Any:
        await gate.wait()
        return 2

    q = build(client, ("c",), query_fn=fn)
    q.set_data(1, updated_at=3.0)
    before = q.state
    task = asyncio.create_task(q.fetch())
    await clock.settle()
    q.cancel(revert=True)
    assert await task == 1  # as TanStack: a reverted fetch resolves with the restored data
    assert q.state == before
    assert client.replica.read(("c",)) == 1


async def test_gc_removes_an_unobserved_query_after_gc_time(client: QueryClient, clock: FakeClock) -> None:
    q = build(client, ("gc",), gc_time=10)
    await clock.advance(9)
    assert client.query_cache.find(("gc",)) is q
    await clock.advance(1)
    assert client.query_cache.find(("gc",)) is None
    client.replica.write(("gc",), "after")  # destroyed: it no longer follows the document
    assert q.state.data is MISSING


async def test_gc_keeps_a_query_that_is_fetching(client: QueryClient, clock: FakeClock) -> None:
    gate = asyncio.Event()

    async def fn(ctx: QueryFunctionContext) -> Any:
        await gate.wait()
        return 1

    q = build(client, ("busy",), query_fn=fn, gc_time=1)
    task = asyncio.create_task(q.fetch())
    await clock.advance(1)
    assert client.query_cache.find(("busy",)) is q  # kept: gc is scheduled again once the fetch settles
    gate.set()
    await task
    await clock.advance(1)
    assert client.query_cache.find(("busy",)) is None


def test_without_an_event_loop_gc_is_deferred_to_the_next_fetch() -> None:
    client = QueryClient(clock=SystemClock(), rng=random.Random(0))  # its timers need a running loop
    client.set_query_data(("sync",), 1)
    q = client.query_cache.find(("sync",))
    assert q is not None and q.gc_deferred

    async def fn(ctx: QueryFunctionContext) -> Any:
        return 2

    async def fetch() -> bool:
        q.set_options(dataclasses.replace(q.options, query_fn=fn))
        await q.fetch()
        deferred = q.gc_deferred
        await client.close()
        return deferred

    assert asyncio.run(fetch()) is False


async def test_entities_changed_is_ignored_once_destroyed(client: QueryClient) -> None:
    q = build(client, ("e",))
    actions = record(client, q)
    client.query_cache.remove(q)
    q.entities_changed({("doc", "1")})
    assert actions == []
