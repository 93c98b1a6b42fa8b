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


async def test_a_fetch_that_confirms_a_pending_entity_edit_becomes_its_base(client: QueryClient, gate: Gate) -> None:
    """The fetch writes nothing (the entity already shows the edit), yet the server now holds
    the edited value: a later failure of the mutation must not roll back to the old one. The
    same as for plain query data (rebase_fetched)."""
    row = {"id": 1, "title": "old", "done": False}

    async def fetch(ctx: Any) -> Any:
        return dict(row)

    client.set_query_defaults(("todo",), normalize=todo)
    await client.fetch_query(("todo", 1), fetch)
    m = client.mutate(1, mutation_fn=gate.fn, optimistic=lambda tx, v: tx.merge_entity(todo, 1, {"title": "mine"}))
    await gate.wait_calls(1)
    row["title"] = "mine"  # another request (or another device) saved the same edit
    await client.fetch_query(("todo", 1), fetch, stale_time=0)
    gate.fail(RuntimeError("this request failed"))
    await m.wait_settled()
    assert client.get_query_data(("todo", 1))["title"] == "mine"
    assert client.entities.get(todo, 1)["title"] == "mine"


async def test_a_fetch_that_does_not_mention_the_entity_leaves_its_base(client: QueryClient, gate: Gate) -> None:
    client.set_query_defaults(("todo",), normalize=todo)
    client.set_query_defaults(("other",), normalize=todo)

    async def fetch_todo(ctx: Any) -> Any:
        return {"id": 1, "title": "old", "done": False}

    async def fetch_other(ctx: Any) -> Any:
        return {"id": 2, "title": "mine", "done": False}  # same value, another entity

    await client.fetch_query(("todo", 1), fetch_todo)
    m = client.mutate(1, mutation_fn=gate.fn, optimistic=lambda tx, v: tx.merge_entity(todo, 1, {"title": "mine"}))
    await gate.wait_calls(1)
    await client.fetch_query(("other", 2), fetch_other)
    gate.fail(RuntimeError("this request failed"))
    await m.wait_settled()
    assert client.get_query_data(("todo", 1))["title"] == "old"
