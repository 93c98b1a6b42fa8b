"""mutate / mutate_async, callbacks, defaults, keys, filters, cache events, observers, scopes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from crdtsync import FakeClock, QueryClient
from crdtsync.errors import MutationCancelledError, MutationNotFoundError
from crdtsync.mutations import MutationAdded, MutationFilters, MutationRemoved, MutationUpdated
from crdtsync.mutations.options import MutationFunctionContext
from crdtsync.mutations.state import Pending, Success

from .conftest import Gate, merge_fields


async def test_mutate_async_returns_data_and_runs_callbacks_in_order(client: QueryClient) -> None:
    log: list[Any] = []

    async def fn(v: Any, ctx: MutationFunctionContext) -> Any:
        log.append(("fn", v, ctx.attempt))
        return v * 2

    client.set_mutation_defaults(
        ("double",), mutation_fn=fn,
        on_mutate=lambda v: log.append(("default on_mutate", v)) or "ctx",
        on_success=lambda d, v, c: log.append(("default on_success", d, c)),
        on_settled=lambda d, e, v, c: log.append(("default on_settled", d, e)),
    )

    async def call_success(d: Any, v: Any, c: Any) -> None:
        log.append(("call on_success", d))

    data = await client.mutate_async(21, mutation_key=("double",), on_success=call_success)
    assert data == 42
    assert log == [
        ("default on_mutate", 21), ("fn", 21, 1), ("default on_success", 42, "ctx"),
        ("call on_success", 42), ("default on_settled", 42, None),
    ]


async def test_errors_reach_on_error_and_mutate_async_raises(client: QueryClient) -> None:
    seen: list[Any] = []

    async def fn(v: Any, ctx: MutationFunctionContext) -> Any:
        raise ValueError("nope")

    with pytest.raises(ValueError, match="nope"):
        await client.mutate_async(1, mutation_fn=fn, on_error=lambda e, v, c: seen.append(("error", str(e))),
                                  on_settled=lambda d, e, v, c: seen.append(("settled", type(e).__name__)))
    assert seen == [("error", "nope"), ("settled", "ValueError")]


async def test_a_raising_callback_does_not_break_the_mutation(client: QueryClient) -> None:
    async def fn(v: Any, ctx: MutationFunctionContext) -> Any:
        return "ok"

    def bad(*args: Any) -> None:
        raise RuntimeError("callback bug")

    assert await client.mutate_async(1, mutation_fn=fn, on_success=bad) == "ok"


async def test_missing_mutation_fn_is_a_typed_error(client: QueryClient) -> None:
    with pytest.raises(MutationNotFoundError):
        await client.mutate_async(1, mutation_key=("unknown",))


async def test_unknown_option_is_rejected(client: QueryClient) -> None:
    with pytest.raises(TypeError, match="bogus"):
        client.mutate(1, bogus=True)
    with pytest.raises(ValueError):
        client.mutate(1, conflict_policy="sometimes")


async def test_retries_use_the_injected_clock(client: QueryClient, clock: FakeClock) -> None:
    attempts: list[int] = []

    async def flaky(v: Any, ctx: MutationFunctionContext) -> Any:
        attempts.append(ctx.attempt)
        if ctx.attempt < 3:
            raise ConnectionError("flaky")
        return ctx.idempotency_key

    m = client.mutate(1, mutation_fn=flaky, retry=2, retry_delay=10)
    await clock.advance(9)
    assert attempts == [1] and m.state.failure_count == 1
    await clock.advance(2)
    assert attempts == [1, 2] and m.state.failure_count == 2
    await clock.advance(10)
    key = await m.result()
    assert attempts == [1, 2, 3] and key == m.idempotency_key


async def test_is_mutating_and_mutation_state_by_key(client: QueryClient, gate: Gate) -> None:
    a = client.mutate(1, mutation_key=("todos", "add"), mutation_fn=gate.fn)
    b = client.mutate(2, mutation_key=("todos", "delete"), mutation_fn=gate.fn)
    client.mutate(3, mutation_key=("users", "add"), mutation_fn=gate.fn)
    await gate.wait_calls(3)
    assert client.is_mutating() == 3
    assert client.is_mutating(("todos",)) == 2
    assert client.is_mutating(MutationFilters(mutation_key=("todos", "add"), exact=True)) == 1
    assert client.mutation_state(("todos",), select=lambda m: m.state.variables) == [1, 2]
    gate.ok("A")
    await a.result()
    assert client.is_mutating(("todos",)) == 1
    assert client.mutation_state(("todos",), status="success", select=lambda m: m.state.data) == ["A"]
    gate.ok("B")
    gate.ok("C")
    await b.result()
    await asyncio.wait_for(client.mutation_cache.find(("users",)).result(), 1)  # type: ignore[union-attr]
    assert client.is_mutating() == 0


async def test_cache_events_and_gc(client: QueryClient, clock: FakeClock) -> None:
    events: list[Any] = []
    client.mutation_cache.subscribe(events.append)

    async def fn(v: Any, ctx: MutationFunctionContext) -> Any:
        return v

    m = client.mutate(1, mutation_fn=fn, gc_time=60)
    await m.result()
    assert isinstance(events[0], MutationAdded)
    actions = [type(e.action) for e in events if isinstance(e, MutationUpdated)]
    assert actions[0] is Pending and actions[-1] is Success
    assert m in client.mutation_cache.get_all()
    await clock.advance(61)
    assert m not in client.mutation_cache.get_all()
    assert isinstance(events[-1], MutationRemoved)


async def test_observer_follows_its_latest_mutation(client: QueryClient, gate: Gate) -> None:
    obs = client.observe_mutation(mutation_fn=gate.fn)
    results: list[str] = []
    obs.subscribe(lambda r: results.append(r.phase))
    first = obs.mutate(1)
    second = obs.mutate(2)
    await gate.wait_calls(2)
    gate.ok("one")
    await first.result()
    assert obs.get_current_result().is_pending  # it follows the second one
    gate.ok("two")
    await second.result()
    assert obs.get_current_result().data == "two"
    assert results == ["pending", "pending", "success"]  # new variables, then the outcome
    obs.reset()
    assert obs.get_current_result().is_idle


async def test_observer_async_iteration(client: QueryClient, gate: Gate) -> None:
    obs = client.observe_mutation(mutation_fn=gate.fn)
    seen: list[str] = []

    async def consume() -> None:
        async for r in obs:
            seen.append(r.phase)
            if r.is_success:
                return

    task = asyncio.ensure_future(consume())
    await asyncio.sleep(0)
    obs.mutate(1)
    await gate.wait_calls(1)
    gate.ok()
    await asyncio.wait_for(task, 1)
    assert seen[0] == "idle" and seen[-1] == "success"


async def test_per_call_callbacks_only_for_the_followed_mutation(client: QueryClient, gate: Gate) -> None:
    obs = client.observe_mutation(mutation_fn=gate.fn)
    obs.subscribe(lambda r: None)  # per-call callbacks run only while subscribed
    calls: list[Any] = []
    first = obs.mutate(1, on_success=lambda d, v, c: calls.append(v))
    obs.mutate(2, on_success=lambda d, v, c: calls.append(v))
    await gate.wait_calls(2)
    gate.ok()
    await first.result()
    gate.ok()
    await obs.mutation.result()  # type: ignore[union-attr]
    assert calls == [2]  # TanStack: mutate-level callbacks fire only for the latest mutation


async def test_same_scope_runs_one_at_a_time_in_order(client: QueryClient, gate: Gate) -> None:
    order: list[str] = []
    client.set_query_data(("todos", 1), {"n": 0})

    def bump(tx: Any, v: Any) -> None:
        order.append(f"optimistic {v}")
        tx.update(("todos", 1), lambda d: {"n": d["n"] + 1})

    async def on_mutate(v: Any) -> None:
        order.append(f"on_mutate {v}")
        await asyncio.sleep(0)

    ms = [client.mutate(i, mutation_fn=gate.fn, scope="todo-1", optimistic=bump, on_mutate=on_mutate)
          for i in range(3)]
    assert client.get_query_data(("todos", 1)) == {"n": 3}  # every optimistic edit shows at once, in order
    await gate.wait_calls(1)
    await asyncio.sleep(0)
    assert len(gate.calls) == 1  # the second waits for the first to settle
    gate.ok()
    await ms[0].result()
    await gate.wait_calls(2)
    gate.fail(RuntimeError("second fails"))
    with pytest.raises(RuntimeError):
        await ms[1].result()
    await gate.wait_calls(3)
    gate.ok()
    await ms[2].result()
    assert [c[0] for c in gate.calls] == [0, 1, 2]
    assert order[:3] == ["optimistic 0", "optimistic 1", "optimistic 2"]
    assert order[3:] == ["on_mutate 0", "on_mutate 1", "on_mutate 2"]
    # The failed middle increment is rolled back only where it is still visible: the third one
    # wrote n=3 on top of it, so n stays 3 (the third succeeded with it).
    assert client.get_query_data(("todos", 1)) == {"n": 3}


async def test_unscoped_mutations_run_in_parallel(client: QueryClient, gate: Gate) -> None:
    client.mutate(1, mutation_fn=gate.fn)
    client.mutate(2, mutation_fn=gate.fn)
    await gate.wait_calls(2)


async def test_cancel_rolls_back_and_fails_typed(client: QueryClient, gate: Gate) -> None:
    client.set_query_data(("todos", 1), {"title": "a"})
    m = client.mutate({"id": 1, "fields": {"title": "b"}}, mutation_fn=gate.fn, optimistic=merge_fields)
    await gate.wait_calls(1)
    assert gate.calls[0][1].cancelled() is False
    m.cancel()
    with pytest.raises(MutationCancelledError):
        await m.result()
    assert client.get_query_data(("todos", 1)) == {"title": "a"}
    assert gate.calls[0][1].cancelled() is True


async def test_a_raising_optimistic_function_fails_the_mutation_cleanly(client: QueryClient, gate: Gate) -> None:
    client.set_query_data(("todos", 1), {"title": "a"})

    def half(tx: Any, v: Any) -> None:
        tx.merge(("todos", 1), {"title": "half"})
        raise KeyError("bug")

    m = client.mutate(1, mutation_fn=gate.fn, optimistic=half)
    with pytest.raises(KeyError):
        await m.result()
    assert client.get_query_data(("todos", 1)) == {"title": "a"}
    assert gate.calls == []
