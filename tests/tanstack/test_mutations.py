"""Ported from TanStack query-core ``mutations.test.tsx`` and ``mutation.test.tsx``
(behaviour, not code)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from crdtsync import FakeClock, QueryClient
from crdtsync.errors import MutationCancelledError, MutationNotFoundError
from tests.tanstack.conftest import settle


class Gate:
    """A mutation function finished by hand, one call at a time."""

    def __init__(self) -> None:
        self.calls: list[Any] = []
        self._futs: list[asyncio.Future[Any]] = []

    async def fn(self, variables: Any, ctx: Any) -> Any:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.calls.append(variables)
        self._futs.append(fut)
        return await fut

    def ok(self, value: Any = "ok") -> None:
        next(f for f in self._futs if not f.done()).set_result(value)


async def test_mutation_waiting_for_its_scope_is_paused(client: QueryClient) -> None:
    """mutations: 'mutations in the same scope should run in serial' (the later one is paused
    while it waits)."""
    gate = Gate()
    first = client.mutate(1, mutation_fn=gate.fn, scope="s")
    second = client.mutate(2, mutation_fn=gate.fn, scope="s")
    await settle()
    assert gate.calls == [1]
    assert not first.state.is_paused
    assert second.state.is_pending and second.state.is_paused
    gate.ok()
    await first.result()
    await settle()
    assert gate.calls == [1, 2] and not second.state.is_paused
    gate.ok()
    assert await second.result() == "ok"


async def echo(variables: Any, ctx: Any) -> Any:
    return variables


async def test_mutate_accepts_none_variables(client: QueryClient) -> None:
    """mutations: 'mutate should accept null values'."""
    assert await client.mutate_async(None, mutation_fn=echo) is None


async def test_mutation_defaults_by_key(client: QueryClient) -> None:
    """mutations: 'setMutationDefaults should be able to set defaults'."""
    client.set_mutation_defaults(("todo",), mutation_fn=echo)
    assert await client.mutate_async("vars", mutation_key=("todo",)) == "vars"


async def test_success_state_sequence(client: QueryClient, clock: FakeClock) -> None:
    """mutations: 'mutation should set correct success states'."""
    gate = Gate()
    observer = client.observe_mutation(mutation_fn=gate.fn, on_mutate=lambda v: "todo")
    states: list[tuple[str, object, object]] = []
    observer.subscribe(lambda r: states.append((r.status, r.data, r.context)))
    assert observer.get_current_result().status == "idle"
    mutation = observer.mutate("todo")
    await settle()
    result = observer.get_current_result()
    assert result.is_pending and result.variables == "todo" and result.context == "todo"
    assert result.submitted_at == clock.now() and result.failure_count == 0
    gate.ok("data")
    await mutation.result()
    await settle()
    result = observer.get_current_result()
    assert result.is_success and result.data == "data" and result.error is None
    assert [s[0] for s in states][-1] == "success" and states[0][0] == "pending"


async def test_error_state_after_retry(client: QueryClient, clock: FakeClock) -> None:
    """mutations: 'mutation should set correct error states' (retry 1, failure count 2)."""
    attempts = [0]

    async def boom(variables: Any, ctx: Any) -> None:
        attempts[0] += 1
        raise RuntimeError(f"err {attempts[0]}")

    observer = client.observe_mutation(mutation_fn=boom, retry=1, retry_delay=1)
    observer.subscribe(lambda r: None)
    mutation = observer.mutate("v")
    await settle()
    assert observer.get_current_result().failure_count == 1
    await clock.advance(1)
    with pytest.raises(RuntimeError, match="err 2"):
        await mutation.result()
    result = observer.get_current_result()
    assert result.is_error and result.failure_count == 2 and str(result.failure_reason) == "err 2"
    assert attempts[0] == 2


async def test_mutation_does_not_retry_by_default(client: QueryClient) -> None:
    """mutations: mutations default to retry 0."""
    attempts = [0]

    async def boom(variables: Any, ctx: Any) -> None:
        attempts[0] += 1
        raise RuntimeError("x")

    with pytest.raises(RuntimeError):
        await client.mutate_async(1, mutation_fn=boom)
    assert attempts[0] == 1


async def test_mutate_without_mutation_fn_errors(client: QueryClient) -> None:
    """mutations: 'mutate should throw an error if no mutationFn found'."""
    with pytest.raises(MutationNotFoundError):
        await client.mutate_async(1)


async def test_state_updates_without_subscription(client: QueryClient) -> None:
    """mutations: 'mutate update the mutation state even without an active subscription'."""
    observer = client.observe_mutation(mutation_fn=echo)
    await observer.mutate("v").result()
    await settle()
    assert observer.get_current_result().is_success and observer.get_current_result().data == "v"


async def test_callbacks_order_and_arguments_on_success(client: QueryClient) -> None:
    """mutations: 'mutation callbacks should be called in correct order with correct arguments for
    success mutations' (defaults, then the call's, then the observer's per-call ones)."""
    order: list[tuple[Any, ...]] = []
    client.set_mutation_defaults(("cb",), mutation_fn=echo,
                                 on_success=lambda d, v, c: order.append(("defaults success", d, v, c)),
                                 on_settled=lambda d, e, v, c: order.append(("defaults settled", d, e, v, c)))
    observer = client.observe_mutation(mutation_key=("cb",), on_mutate=lambda v: order.append(("mutate", v)) or "ctx",
                                       on_success=lambda d, v, c: order.append(("options success", d, v, c)))
    observer.subscribe(lambda r: None)
    await observer.mutate("v", on_success=lambda d, v, c: order.append(("call success", d, v, c)),
                          on_settled=lambda d, e, v, c: order.append(("call settled", d, e, v, c))).result()
    await settle()
    # DIFFERENCE: the defaults' callbacks run too, before the options' (TanStack: options replace
    # the defaults). See docs/queries.md, "Differences from TanStack Query".
    assert order == [
        ("mutate", "v"),
        ("defaults success", "v", "v", "ctx"),
        ("options success", "v", "v", "ctx"),
        ("defaults settled", "v", None, "v", "ctx"),
        ("call success", "v", "v", "ctx"),
        ("call settled", "v", None, "v", "ctx"),
    ]


async def test_callbacks_order_on_error(client: QueryClient) -> None:
    """mutations: 'mutation callbacks should be called in correct order with correct arguments for
    error mutations'."""
    order: list[str] = []
    err = RuntimeError("x")

    async def boom(variables: Any, ctx: Any) -> None:
        raise err

    observer = client.observe_mutation(mutation_fn=boom, on_mutate=lambda v: order.append("mutate"),
                                       on_error=lambda e, v, c: order.append("options error"),
                                       on_settled=lambda d, e, v, c: order.append(f"options settled {e is err}"))
    observer.subscribe(lambda r: None)
    with pytest.raises(RuntimeError):
        await observer.mutate(1, on_error=lambda e, v, c: order.append("call error")).result()
    await settle()
    assert order == ["mutate", "options error", "options settled True", "call error"]


async def test_unscoped_mutations_run_in_parallel(client: QueryClient) -> None:
    """mutations: 'mutations without scope should run in parallel'."""
    gate = Gate()
    m1 = client.mutate(1, mutation_fn=gate.fn)
    m2 = client.mutate(2, mutation_fn=gate.fn)
    await settle()
    assert gate.calls == [1, 2] and not m2.state.is_paused
    gate.ok()
    gate.ok()
    await m1.result()
    await m2.result()


async def test_different_scopes_run_in_parallel(client: QueryClient) -> None:
    """mutations: 'each scope should run in parallel, serial within scope'."""
    gate = Gate()
    a1 = client.mutate("a1", mutation_fn=gate.fn, scope="a")
    b1 = client.mutate("b1", mutation_fn=gate.fn, scope="b")
    a2 = client.mutate("a2", mutation_fn=gate.fn, scope="a")
    await settle()
    assert gate.calls == ["a1", "b1"] and a2.state.is_paused
    gate.ok()
    await a1.result()
    await settle()
    assert gate.calls == ["a1", "b1", "a2"]
    gate.ok()
    gate.ok()
    await b1.result()
    await a2.result()


async def test_scope_continues_after_error(client: QueryClient) -> None:
    """mutations: 'mutations in the same scope should continue after an error'."""
    gate = Gate()
    m1 = client.mutate(1, mutation_fn=gate.fn, scope="s")
    m2 = client.mutate(2, mutation_fn=gate.fn, scope="s")
    await settle()
    next(f for f in gate._futs if not f.done()).set_exception(RuntimeError("x"))
    with pytest.raises(RuntimeError):
        await m1.result()
    await settle()
    assert gate.calls == [1, 2]
    gate.ok()
    assert await m2.result() == "ok"


async def test_paused_while_offline_and_network_mode_always(client: QueryClient) -> None:
    """mutations: networkMode 'online' pauses while offline; 'always' runs."""
    gate = Gate()
    client.online_manager.set_online(False)
    paused = client.mutate(1, mutation_fn=gate.fn)
    always = client.mutate(2, mutation_fn=gate.fn, network_mode="always")
    await settle()
    assert paused.state.is_paused and gate.calls == [2]
    gate.ok()
    await always.result()
    client.online_manager.set_online(True)
    await settle()
    assert gate.calls == [2, 1]
    gate.ok()
    await paused.result()


async def test_retry_delay_is_respected(client: QueryClient, clock: FakeClock) -> None:
    """mutations: 'mutation should retry with retryDelay'."""
    times: list[float] = []

    async def flaky(variables: Any, ctx: Any) -> str:
        times.append(clock.now())
        if len(times) < 3:
            raise RuntimeError("x")
        return "ok"

    mutation = client.mutate(1, mutation_fn=flaky, retry=2, retry_delay=5)
    await clock.advance(10)
    assert await mutation.result() == "ok"
    assert [t - times[0] for t in times] == [0, 5, 10]


async def test_cancel_rolls_back_and_errors(client: QueryClient) -> None:
    """mutation: a cancelled mutation settles in error (its optimistic edit rolled back)."""
    gate = Gate()
    client.set_query_data(("t",), {"v": 1})
    mutation = client.mutate(2, mutation_fn=gate.fn, optimistic=lambda tx, v: tx.merge(("t",), {"v": v}))
    assert client.get_query_data(("t",)) == {"v": 2}
    await settle()
    mutation.cancel()
    with pytest.raises(MutationCancelledError):
        await mutation.result()
    assert client.get_query_data(("t",)) == {"v": 1} and mutation.state.is_error
