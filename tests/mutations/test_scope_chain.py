"""A scope's order holds when a mutation in the middle settles early (review fixes)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from crdtsync import QueryClient
from crdtsync.errors import MutationCancelledError

from .conftest import Gate


async def _not_called_again(gate: Gate, n: int) -> None:
    """The server has not seen an ``n``-th call (C must still be waiting)."""
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(gate.wait_calls(n), 0.1)


async def test_cancelled_middle_mutation_does_not_release_the_next(client: QueryClient, gate: Gate) -> None:
    a = client.mutate("A", mutation_fn=gate.fn, scope="s")
    b = client.mutate("B", mutation_fn=gate.fn, scope="s")
    c = client.mutate("C", mutation_fn=gate.fn, scope="s")
    await gate.wait_calls(1)
    b.cancel()
    with pytest.raises(MutationCancelledError):
        await b.result()
    await _not_called_again(gate, 2)
    assert [v for v, _ in gate.calls] == ["A"]
    gate.ok("a")
    assert await a.result() == "a"
    await gate.wait_calls(2)
    assert [v for v, _ in gate.calls] == ["A", "C"]
    assert c._prev is None  # the settled chain is not kept alive
    gate.ok("c")
    assert await c.result() == "c"


async def test_optimistic_error_in_the_middle_waits_for_earlier_ones(client: QueryClient, gate: Gate) -> None:
    def bad(tx: Any, v: Any) -> None:
        raise ValueError("bad")

    a = client.mutate("A", mutation_fn=gate.fn, scope="s")
    b = client.mutate("B", mutation_fn=gate.fn, scope="s", optimistic=bad)
    c = client.mutate("C", mutation_fn=gate.fn, scope="s")
    await gate.wait_calls(1)
    await _not_called_again(gate, 2)
    assert b.state.status == "pending"  # fails in its turn, not before A settled
    gate.ok("a")
    await a.result()
    with pytest.raises(ValueError):
        await b.result()
    await gate.wait_calls(2)
    assert [v for v, _ in gate.calls] == ["A", "C"]
    gate.ok("c")
    await c.result()


async def test_many_cancelled_in_a_row_and_a_later_mutation(client: QueryClient, gate: Gate) -> None:
    a = client.mutate("A", mutation_fn=gate.fn, scope="s")
    middle = [client.mutate(i, mutation_fn=gate.fn, scope="s") for i in range(300)]
    await gate.wait_calls(1)
    for m in middle:
        m.cancel()
    for m in middle:
        with pytest.raises(MutationCancelledError):
            await m.result()
    # the scope's tail settled early; a new mutation still waits for A
    d = client.mutate("D", mutation_fn=gate.fn, scope="s")
    await _not_called_again(gate, 2)
    gate.ok()
    await a.result()
    await gate.wait_calls(2)
    assert [v for v, _ in gate.calls] == ["A", "D"]
    gate.ok()
    await d.result()
