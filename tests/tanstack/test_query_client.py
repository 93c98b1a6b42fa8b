"""Ported from TanStack query-core ``queryClient.test.tsx`` (behaviour, not code)."""

from __future__ import annotations

import asyncio

import pytest

from crdtsync import FakeClock, QueryClient
from crdtsync.errors import CancelledError
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
    with pytest.raises(CancelledError):
        await asyncio.wait_for(task, 2)
    state = client.get_query_state(("c0",))
    assert state is not None and state.status == "pending" and state.fetch_status == "idle"


async def test_cancel_queries_without_revert_sets_error(client: QueryClient) -> None:
    """cancelQueries: 'should not revert if revert option is set to false' (status error with a
    CancelledError)."""
    client.set_query_data(("c1",), "old")
    server = Server()
    task = asyncio.create_task(client.fetch_query(("c1",), server.fn))
    await settle()
    await client.cancel_queries(("c1",), revert=False)
    with pytest.raises(CancelledError):
        await asyncio.wait_for(task, 2)
    state = client.get_query_state(("c1",))
    assert state is not None and state.status == "error" and isinstance(state.error, CancelledError)
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
