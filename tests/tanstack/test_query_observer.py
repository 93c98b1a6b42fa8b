"""Ported from TanStack query-core ``queryObserver.test.tsx`` (behaviour, not code)."""

from __future__ import annotations

from crdtsync import QueryClient
from tests.tanstack.conftest import returning


async def test_initial_data_applies_to_existing_query_without_data(client: QueryClient) -> None:
    """queryObserver: 'should be able to set initial data on an existing query' (a query that
    exists without data takes the observer's initialData)."""
    client.observe(("od",), returning("fetched"))
    observer = client.observe(("od",), returning("fetched"), initial_data="initial", stale_time=60)
    assert client.get_query_data(("od",)) == "initial"
    assert observer.get_current_result().data == "initial"
    assert observer.get_current_result().status == "success"


async def test_refetch_without_subscriber_returns_fresh_result(client: QueryClient) -> None:
    """queryObserver: 'should be able to fetch with a selector' / refetch() resolves with the
    updated result even when nobody subscribed."""
    observer = client.observe(("rf",), returning("data"))
    result = await observer.refetch()
    assert result.data == "data" and result.status == "success"
    assert observer.get_current_result() is result
