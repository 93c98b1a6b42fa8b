"""Ported from TanStack query-core ``mutationCache.test.tsx`` (behaviour, not code)."""

from __future__ import annotations

import asyncio
from typing import Any

from crdtsync import FakeClock, QueryClient
from crdtsync.mutations import MutationFilters
from crdtsync.mutations.events import MutationAdded, MutationRemoved, MutationUpdated
from tests.tanstack.conftest import settle


async def echo(variables: Any, ctx: Any) -> Any:
    return variables


async def test_cache_events_for_a_mutation(client: QueryClient) -> None:
    """mutationCache > subscribe: added, updated (pending, success), removed."""
    events: list[object] = []
    client.mutation_cache.subscribe(events.append)
    await client.mutate_async(1, mutation_fn=echo, gc_time=0)
    await settle()
    kinds = [type(e).__name__ for e in events]
    assert kinds[0] == "MutationAdded" and "MutationUpdated" in kinds
    assert any(isinstance(e, MutationUpdated) and type(e.action).__name__ == "Success" for e in events)


async def test_find_by_key(client: QueryClient) -> None:
    """mutationCache > find > 'should filter correctly'."""
    await client.mutate_async(1, mutation_fn=echo, mutation_key=("todos", 1))
    found = client.mutation_cache.find(("todos",))
    assert found is not None and found.mutation_key == ("todos", 1)
    assert client.mutation_cache.find(("todos",), exact=True) is None
    assert client.mutation_cache.find(("other",)) is None


async def test_find_all_filters(client: QueryClient) -> None:
    """mutationCache > findAll > 'should filter correctly' (key, predicate, status)."""
    gate: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def wait(v: Any, ctx: Any) -> str:
        return await gate

    await client.mutate_async(1, mutation_fn=echo, mutation_key=("a", 1))
    await client.mutate_async(2, mutation_fn=echo, mutation_key=("a", 2))
    pending = client.mutate(3, mutation_fn=wait, mutation_key=("b",))
    cache = client.mutation_cache
    assert len(cache.find_all(("a",))) == 2
    assert [m.state.variables for m in cache.find_all(predicate=lambda m: m.state.variables == 2)] == [2]
    assert cache.find_all(status="pending") == [pending]
    assert len(cache.find_all(MutationFilters(status="success"))) == 2
    assert cache.find_all(("c",)) == []
    gate.set_result("ok")
    await pending.result()


async def test_settled_mutation_collected_after_gc_time(client: QueryClient, clock: FakeClock) -> None:
    """mutationCache > garbage collection > 'should remove unused mutations after gcTime has
    elapsed'."""
    await client.mutate_async(1, mutation_fn=echo, gc_time=10)
    assert len(client.mutation_cache) == 1
    await clock.advance(9)
    assert len(client.mutation_cache) == 1
    await clock.advance(2)
    assert len(client.mutation_cache) == 0


async def test_gc_time_zero_collects_at_once(client: QueryClient, clock: FakeClock) -> None:
    """mutationCache > garbage collection > 'should be garbage collected immediately with gcTime 0'."""
    removed: list[object] = []
    client.mutation_cache.subscribe(lambda e: removed.append(e) if isinstance(e, MutationRemoved) else None)
    await client.mutate_async(1, mutation_fn=echo, gc_time=0)
    await clock.advance(0)
    assert len(client.mutation_cache) == 0 and len(removed) == 1


async def test_not_collected_while_observed(client: QueryClient, clock: FakeClock) -> None:
    """mutationCache > garbage collection > 'should not remove mutations if there are active
    observers'."""
    observer = client.observe_mutation(mutation_fn=echo, gc_time=10)
    unsubscribe = observer.subscribe(lambda r: None)
    await observer.mutate(1).result()
    await clock.advance(20)
    assert len(client.mutation_cache) == 1
    unsubscribe()
    await clock.advance(11)
    assert len(client.mutation_cache) == 0


async def test_callbacks_run_with_gc_time_zero(client: QueryClient, clock: FakeClock) -> None:
    """mutationCache > garbage collection > 'should call callbacks even with gcTime 0 and mutation
    still running'."""
    seen: list[str] = []
    gate: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def wait(v: Any, ctx: Any) -> str:
        return await gate

    mutation = client.mutate(1, mutation_fn=wait, gc_time=0,
                             on_success=lambda *a: seen.append("success"),
                             on_settled=lambda *a: seen.append("settled"))
    await clock.advance(1)
    gate.set_result("ok")
    assert await mutation.result() == "ok"
    assert seen == ["success", "settled"]


async def test_clear_removes_everything(client: QueryClient) -> None:
    """mutationCache > clear."""
    await client.mutate_async(1, mutation_fn=echo)
    await client.mutate_async(2, mutation_fn=echo)
    client.mutation_cache.clear()
    assert len(client.mutation_cache) == 0 and client.mutation_cache.get_all() == []


async def test_mutation_state_selects(client: QueryClient) -> None:
    """mutationCache / useMutationState: the state of every matching mutation, oldest first."""
    await client.mutate_async("a", mutation_fn=echo, mutation_key=("k",))
    await client.mutate_async("b", mutation_fn=echo, mutation_key=("k",))
    assert client.mutation_state(("k",), select=lambda m: m.state.variables) == ["a", "b"]
    assert [s.status for s in client.mutation_state(("k",))] == ["success", "success"]


async def test_added_event_before_optimistic_edit_visible(client: QueryClient) -> None:
    """mutationCache > 'should notify the cache when a mutation is added'."""
    added: list[object] = []
    client.mutation_cache.subscribe(lambda e: added.append(e) if isinstance(e, MutationAdded) else None)
    mutation = client.mutate(1, mutation_fn=echo)
    assert [e.mutation for e in added] == [mutation]  # type: ignore[attr-defined]
    await mutation.result()
