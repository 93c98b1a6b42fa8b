"""Ported from TanStack query-core ``mutationObserver.test.tsx`` (behaviour, not code)."""

from __future__ import annotations

import asyncio
from typing import Any

from crdtsync import FakeClock, QueryClient
from tests.tanstack.conftest import settle


async def ok(variables: Any, ctx: Any) -> Any:
    return variables


async def test_mutate_callbacks_run_only_while_subscribed(client: QueryClient) -> None:
    """mutationObserver: 'should not notify mutate callbacks if there are no listeners'."""
    seen: list[str] = []
    observer = client.observe_mutation(mutation_fn=ok)
    mutation = observer.mutate(1, on_success=lambda *a: seen.append("success"),
                               on_settled=lambda *a: seen.append("settled"))
    assert await mutation.result() == 1
    await settle()
    assert seen == []
    unsubscribe = observer.subscribe(lambda r: None)
    await observer.mutate(2, on_success=lambda *a: seen.append("success")).result()
    await settle()
    assert seen == ["success"]
    unsubscribe()


async def test_unsubscribed_observer_lets_its_mutation_be_collected(client: QueryClient, clock: FakeClock) -> None:
    """mutationObserver: 'should unsubscribe when the last listener unsubscribes' (the mutation
    loses its observer and is removed after gc_time)."""
    observer = client.observe_mutation(mutation_fn=ok, gc_time=10)
    unsubscribe = observer.subscribe(lambda r: None)
    await observer.mutate(1).result()
    assert len(client.mutation_cache) == 1
    unsubscribe()
    await clock.advance(11)
    assert len(client.mutation_cache) == 0


async def test_per_call_callbacks_may_be_async(client: QueryClient) -> None:
    """mutationObserver: mutate callbacks run after the options' ones (async ones are awaited)."""
    order: list[str] = []

    async def call_success(data: Any, variables: Any, context: Any) -> None:
        await asyncio.sleep(0)
        order.append("call success")

    observer = client.observe_mutation(mutation_fn=ok, on_settled=lambda *a: order.append("options settled"))
    observer.subscribe(lambda r: None)
    await observer.mutate(1, on_success=call_success, on_settled=lambda *a: order.append("call settled")).result()
    await settle()
    assert order == ["options settled", "call success", "call settled"]
