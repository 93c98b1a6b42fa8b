"""Ported from TanStack query-core ``mutations.test.tsx`` and ``mutation.test.tsx``
(behaviour, not code)."""

from __future__ import annotations

import asyncio
from typing import Any

from crdtsync import QueryClient
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
