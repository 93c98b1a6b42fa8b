"""Optimistic edits of normalized entities: every referencing query shows them, fetches of
any of those queries are rebased, and a rollback reverts only the edited field."""

from __future__ import annotations

import asyncio
from typing import Any

from crdtsync import QueryClient
from crdtsync.mutations import ConflictDetected
from crdtsync.normalize import EntityType

from .conftest import Gate

todo = EntityType("todo", id="id")


async def test_entity_edit_shows_everywhere_survives_a_stale_fetch_and_rolls_back(
        client: QueryClient, gate: Gate) -> None:
    server = {"1": {"id": 1, "title": "a", "done": False}, "2": {"id": 2, "title": "b", "done": False}}
    client.set_query_defaults(("todos", "list"), normalize=[todo])
    client.set_query_defaults(("todo",), normalize=todo)
    release = asyncio.Event()
    release.set()

    async def fetch_list(ctx: Any) -> Any:
        snapshot = [dict(t) for t in server.values()]
        await release.wait()
        return snapshot

    async def fetch_one(ctx: Any) -> Any:
        return dict(server[str(ctx.query_key[1])])

    await client.fetch_query(("todos", "list"), fetch_list)
    await client.fetch_query(("todo", 1), fetch_one)
    conflicts: list[Any] = []
    client.mutation_cache.subscribe(lambda e: conflicts.append(e.conflict) if isinstance(e, ConflictDetected) else None)

    release.clear()
    stale = asyncio.ensure_future(client.fetch_query(("todos", "list"), fetch_list, stale_time=0))
    await asyncio.sleep(0)
    m = client.mutate({"id": 1, "title": "mine"}, mutation_fn=gate.fn,
                      optimistic=lambda tx, v: tx.merge_entity(todo, v["id"], {"title": v["title"]}))
    assert client.get_query_data(("todo", 1))["title"] == "mine"
    assert client.get_query_data(("todos", "list"))[0]["title"] == "mine"
    release.set()
    await stale  # answered with the old title: rebased, not reverted
    assert client.get_query_data(("todos", "list"))[0]["title"] == "mine"
    assert conflicts == []  # the old value is the base, not a conflict

    server["1"]["done"] = True  # a change by someone else, to another field
    server["1"]["title"] = "theirs"
    await client.fetch_query(("todo", 1), fetch_one, stale_time=0)
    assert client.get_query_data(("todo", 1)) == {"id": 1, "title": "mine", "done": True}
    assert [(c.source, c.incoming) for c in conflicts] == [("server", "theirs")]

    await gate.wait_calls(1)
    gate.fail(RuntimeError("rejected"))
    await m.wait_settled()
    assert client.get_query_data(("todo", 1)) == {"id": 1, "title": "theirs", "done": True}
    assert client.get_query_data(("todos", "list"))[0] == {"id": 1, "title": "theirs", "done": True}
