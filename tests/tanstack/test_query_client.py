"""Ported from TanStack query-core ``queryClient.test.tsx`` (behaviour, not code)."""

from __future__ import annotations

import asyncio

from crdtsync import FakeClock, QueryClient
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
