"""Ported from TanStack query-core ``infiniteQueryBehavior.test.tsx`` (behaviour, not code)."""

from __future__ import annotations

from typing import Any

import pytest

from crdtsync import QueryClient
from crdtsync.query import QueryFunctionContext


def pages_fn(calls: list[tuple[Any, Any]]) -> Any:
    async def fn(ctx: QueryFunctionContext) -> Any:
        calls.append((ctx.page_param, ctx.direction))
        return {"n": ctx.page_param}

    return fn


def next_param(last: Any, pages: Any, last_param: Any, params: Any) -> Any:
    return last_param + 1 if last_param < 5 else None


def previous_param(first: Any, pages: Any, first_param: Any, params: Any) -> Any:
    return first_param - 1 if first_param > -5 else None


async def test_first_page_and_refetch_have_direction_forward(client: QueryClient) -> None:
    """infiniteQueryBehavior: 'should provide the correct query function context' (direction
    'forward' for the initial fetch and for refetched pages)."""
    calls: list[tuple[Any, Any]] = []
    await client.fetch_infinite_query(("inf",), pages_fn(calls), initial_page_param=0,
                                      get_next_page_param=next_param)
    assert calls == [(0, "forward")]
    await client.fetch_next_page(("inf",))
    calls.clear()
    await client.refetch_queries(("inf",))
    assert calls == [(0, "forward"), (1, "forward")]


async def _feed(client: QueryClient, calls: list[tuple[Any, Any]], **options: Any) -> Any:
    return await client.fetch_infinite_query(("feed",), pages_fn(calls), initial_page_param=0,
                                             get_next_page_param=next_param,
                                             get_previous_page_param=previous_param, **options)


async def test_next_and_previous_pages_and_directions(client: QueryClient) -> None:
    """infiniteQueryBehavior: fetchNextPage appends with direction 'forward', fetchPreviousPage
    prepends with 'backward'."""
    calls: list[tuple[Any, Any]] = []
    await _feed(client, calls)
    await client.fetch_next_page(("feed",))
    data = await client.fetch_previous_page(("feed",))
    assert data == {"pages": [{"n": -1}, {"n": 0}, {"n": 1}], "page_params": [-1, 0, 1]}
    assert calls == [(0, "forward"), (1, "forward"), (-1, "backward")]


async def test_refetch_reloads_every_page_from_first_param(client: QueryClient) -> None:
    """infiniteQueryBehavior: 'should refetch all pages' starting from the first page param."""
    calls: list[tuple[Any, Any]] = []
    await _feed(client, calls)
    await client.fetch_previous_page(("feed",))
    await client.fetch_next_page(("feed",))
    calls.clear()
    await client.refetch_queries(("feed",))
    assert [c[0] for c in calls] == [-1, 0, 1]


async def test_max_pages_forward_drops_first_pages(client: QueryClient) -> None:
    """infiniteQueryBehavior: 'should remove the first page when fetching next page with maxPages'."""
    calls: list[tuple[Any, Any]] = []
    await _feed(client, calls, max_pages=2)
    await client.fetch_next_page(("feed",))
    data = await client.fetch_next_page(("feed",))
    assert data["page_params"] == [1, 2]


async def test_max_pages_backward_drops_last_pages(client: QueryClient) -> None:
    """infiniteQueryBehavior: 'should remove the last page when fetching previous page with
    maxPages'."""
    calls: list[tuple[Any, Any]] = []
    await _feed(client, calls, max_pages=2)
    await client.fetch_previous_page(("feed",))
    data = await client.fetch_previous_page(("feed",))
    assert data["page_params"] == [-2, -1]


async def test_no_next_page_keeps_data(client: QueryClient) -> None:
    """infiniteQueryBehavior: fetchNextPage with no next page (getNextPageParam returns None)
    fetches nothing."""
    calls: list[tuple[Any, Any]] = []
    data = await client.fetch_infinite_query(("end",), pages_fn(calls), initial_page_param=5,
                                             get_next_page_param=next_param)
    again = await client.fetch_next_page(("end",))
    assert again == data and len(calls) == 1


async def test_no_previous_page_without_getter(client: QueryClient) -> None:
    """infiniteQueryBehavior: fetchPreviousPage without getPreviousPageParam fetches nothing."""
    calls: list[tuple[Any, Any]] = []
    data = await client.fetch_infinite_query(("np",), pages_fn(calls), initial_page_param=0,
                                             get_next_page_param=next_param)
    assert await client.fetch_previous_page(("np",)) == data and len(calls) == 1


async def test_refetch_stops_when_next_param_is_none(client: QueryClient) -> None:
    """infiniteQueryBehavior: a refetch stops at the page whose next param is now None."""
    calls: list[tuple[Any, Any]] = []
    limit = [5]

    def next_limited(last: Any, pages: Any, last_param: Any, params: Any) -> Any:
        return last_param + 1 if last_param < limit[0] else None

    await client.fetch_infinite_query(("lim",), pages_fn(calls), initial_page_param=0,
                                      get_next_page_param=next_limited, pages=3)
    limit[0] = 1
    calls.clear()
    await client.refetch_queries(("lim",))
    assert [c[0] for c in calls] == [0, 1]
    assert client.get_query_data(("lim",))["page_params"] == [0, 1]


async def test_failed_next_page_keeps_pages(client: QueryClient) -> None:
    """infiniteQueryBehavior: a failing fetchNextPage keeps the pages already loaded."""
    fail = [False]

    async def fn(ctx: QueryFunctionContext) -> Any:
        if fail[0]:
            raise RuntimeError("x")
        return {"n": ctx.page_param}

    data = await client.fetch_infinite_query(("ff",), fn, initial_page_param=0, get_next_page_param=next_param)
    fail[0] = True
    with pytest.raises(RuntimeError):
        await client.fetch_next_page(("ff",))
    assert client.get_query_data(("ff",)) == data
    assert client.get_query_state(("ff",)).status == "error"  # type: ignore[union-attr]


async def test_page_param_given_to_query_fn(client: QueryClient) -> None:
    """infiniteQueryBehavior: the query function receives pageParam (and the key)."""
    seen: list[QueryFunctionContext] = []

    async def fn(ctx: QueryFunctionContext) -> Any:
        seen.append(ctx)
        return ctx.page_param

    await client.fetch_infinite_query(("pp", 1), fn, initial_page_param="cursor-a", get_next_page_param=lambda *a: None)
    assert seen[0].page_param == "cursor-a" and seen[0].query_key == ("pp", 1)


async def test_next_page_on_missing_query_errors(client: QueryClient) -> None:
    """infiniteQueryBehavior: fetchNextPage needs an infinite query in the cache."""
    with pytest.raises(LookupError):
        await client.fetch_next_page(("missing",))
