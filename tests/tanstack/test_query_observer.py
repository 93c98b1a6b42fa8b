"""Ported from TanStack query-core ``queryObserver.test.tsx`` (behaviour, not code)."""

from __future__ import annotations

import asyncio

from crdtsync import FakeClock, QueryClient
from tests.tanstack.conftest import Server, returning, settle


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


async def test_placeholder_data_keeps_identity_across_results(client: QueryClient) -> None:
    """queryObserver: 'should not recompute placeholderData if it did not change' / an equal
    placeholder keeps the previous object (memoised, structurally shared)."""
    server = Server()
    made: list[object] = []

    def placeholder(previous: object) -> dict[str, int]:
        made.append(previous)
        return {"placeholder": 1}

    observer = client.observe(("ph",), server.fn, placeholder_data=placeholder)
    first = observer.get_current_result()
    results: list[object] = []
    unsubscribe = observer.subscribe(results.append)
    await settle()
    current = observer.get_current_result()
    assert current.is_placeholder_data and current.is_fetching
    assert current.data is first.data
    assert len(made) == 1  # the same placeholder function is not called again
    observer.set_observer_options(placeholder_data=lambda previous: {"placeholder": 1})
    assert observer.get_current_result().data is first.data  # an equal new one: same object
    server.release({"real": 1})
    await settle()
    assert observer.get_current_result().data == {"real": 1}
    unsubscribe()


async def test_disabled_observer_is_not_stale(client: QueryClient, clock: FakeClock) -> None:
    """queryObserver: 'should return isStale false if the query is disabled' (and it stays so
    without the stale timer spinning)."""
    observer = client.observe(("dis",), returning("d"), enabled=False)
    unsubscribe = observer.subscribe(lambda r: None)
    assert observer.get_current_result().is_stale is False
    await client.fetch_query(("dis",), returning("d"))
    await asyncio.wait_for(clock.advance(10), 2)
    assert observer.get_current_result().is_stale is False
    observer.set_observer_options(enabled=True)
    assert observer.get_current_result().is_stale is True
    unsubscribe()
