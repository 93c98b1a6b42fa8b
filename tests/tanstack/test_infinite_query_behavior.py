"""Ported from TanStack query-core ``infiniteQueryBehavior.test.tsx`` (behaviour, not code)."""

from __future__ import annotations

from typing import Any

from crdtsync import QueryClient
from crdtsync.cache import QueryFunctionContext


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
