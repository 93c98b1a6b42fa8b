"""A field with pending edits is owned by every edit that writes it, even with the value on
screen (review fixes: tx.set of an unchanged value, re-applying after a resolved conflict)."""

from __future__ import annotations

import asyncio
from typing import Any

from crdtsync import QueryClient
from crdtsync.errors import VersionConflictError

from .conftest import Gate


async def test_newer_set_with_the_value_on_screen_owns_the_field(client: QueryClient, gate: Gate) -> None:
    client.set_query_data(("todos", 1), {"title": "old", "done": False})
    m1 = client.mutate("m1", mutation_fn=gate.fn,
                       optimistic=lambda tx, v: tx.merge(("todos", 1), {"title": "x"}))
    m2 = client.mutate("m2", mutation_fn=gate.fn,
                       optimistic=lambda tx, v: tx.set(("todos", 1), {"title": "x", "done": True}))
    assert ("todos", ("1", "title")) in client.overlay.leaves(m2.mutation_id)
    await gate.wait_calls(2)
    gate.fail(RuntimeError("m1 rejected"))
    await m1.wait_settled()
    assert client.get_query_data(("todos", 1)) == {"title": "x", "done": True}
    gate.ok()
    await m2.result()
    assert client.get_query_data(("todos", 1)) == {"title": "x", "done": True}


async def test_reapplied_edit_keeps_fields_whose_value_did_not_change(client: QueryClient) -> None:
    client.set_query_data(("todos", 1), {"title": "old", "version": 1})
    retry: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    second_call = asyncio.Event()

    async def fn(v: Any, ctx: Any) -> Any:
        if v["version"] == 1:
            raise VersionConflictError("409", server_value=None, server_version=2)
        second_call.set()
        return await retry

    def opt(tx: Any, v: Any) -> None:
        tx.set(("todos", 1), {"title": v["title"], "version": v["version"]})

    m = client.mutate({"title": "new", "version": 1}, mutation_fn=fn, optimistic=opt,
                      resolve_conflict=lambda vc: {**vc.variables, "version": 2})
    await asyncio.wait_for(second_call.wait(), 2)
    assert client.get_query_data(("todos", 1)) == {"title": "new", "version": 2}
    assert sorted(client.overlay.leaves(m.mutation_id)) == [
        ("todos", ("1", "title")), ("todos", ("1", "version"))]
    retry.set_exception(RuntimeError("rejected"))
    await m.wait_settled()
    assert client.get_query_data(("todos", 1)) == {"title": "old", "version": 1}
