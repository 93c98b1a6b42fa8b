"""Ported from TanStack query-core ``mutationObserver.test.tsx`` (behaviour, not code)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

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


async def test_one_unsubscribe_of_two_keeps_observing(client: QueryClient, clock: FakeClock) -> None:
    """mutationObserver: 'onUnsubscribe should not remove the current mutation observer if there is
    still a subscription'."""
    observer = client.observe_mutation(mutation_fn=ok, gc_time=1)
    u1 = observer.subscribe(lambda r: None)
    u2 = observer.subscribe(lambda r: None)
    await observer.mutate(1).result()
    u1()
    await clock.advance(5)
    assert len(client.mutation_cache) == 1
    u2()
    await clock.advance(2)
    assert len(client.mutation_cache) == 0


async def test_reset_lets_mutation_be_collected(client: QueryClient, clock: FakeClock) -> None:
    """mutationObserver: 'reset should remove observer to trigger GC'."""
    observer = client.observe_mutation(mutation_fn=ok, gc_time=1)
    unsubscribe = observer.subscribe(lambda r: None)
    await observer.mutate(1).result()
    observer.reset()
    assert observer.get_current_result().is_idle
    await clock.advance(2)
    assert len(client.mutation_cache) == 0
    unsubscribe()


async def test_follows_only_latest_mutation(client: QueryClient) -> None:
    """mutationObserver: 'should only notify the latest mutation' (results follow the newest
    mutate; the older one runs on)."""
    release: list[asyncio.Future[Any]] = []

    async def wait(v: Any, ctx: Any) -> Any:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        release.append(fut)
        return await fut

    observer = client.observe_mutation(mutation_fn=wait)
    data: list[Any] = []
    observer.subscribe(lambda r: data.append((r.status, r.variables)))
    first = observer.mutate(1)
    second = observer.mutate(2)
    await settle()
    release[0].set_result("one")
    await first.result()
    await settle()
    assert observer.get_current_result().variables == 2 and observer.get_current_result().is_pending
    release[1].set_result("two")
    await second.result()
    await settle()
    assert observer.get_current_result().data == "two"
    assert ("success", 1) not in data


async def test_mutate_async_returns_and_raises(client: QueryClient) -> None:
    """mutationObserver: 'mutateAsync' resolves with the data and rejects with the error."""
    observer = client.observe_mutation(mutation_fn=ok)
    assert await observer.mutate_async(5) == 5

    async def boom(v: Any, ctx: Any) -> None:
        raise RuntimeError("x")

    failing = client.observe_mutation(mutation_fn=boom)
    with pytest.raises(RuntimeError):
        await failing.mutate_async(1)
    assert failing.get_current_result().is_error


async def test_set_options_applies_to_next_mutate(client: QueryClient) -> None:
    """mutationObserver: 'setOptions should update the options of the next mutation'."""

    async def double(v: Any, ctx: Any) -> Any:
        return v * 2

    observer = client.observe_mutation(mutation_fn=ok)
    observer.set_options(mutation_fn=double)
    assert await observer.mutate_async(3) == 6


async def test_result_is_paused_while_offline(client: QueryClient) -> None:
    """mutationObserver: a mutation waiting for the network reports isPaused."""
    client.online_manager.set_online(False)
    observer = client.observe_mutation(mutation_fn=ok)
    mutation = observer.mutate(1)
    await settle()
    assert observer.get_current_result().is_paused and observer.get_current_result().is_pending
    client.online_manager.set_online(True)
    assert await asyncio.wait_for(mutation.result(), 2) == 1
    await settle()
    assert not observer.get_current_result().is_paused
