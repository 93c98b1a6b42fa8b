"""Optimistic edits: visible at once, exact rollback, no flicker under fetches, batches."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from crdtsync import QueryClient
from crdtsync.origins import OriginKind
from crdtsync.query import QueryFunctionContext
from crdtsync.values import MISSING

from .conftest import Gate, merge_fields


def edit(id_: int, **fields: Any) -> dict[str, Any]:
    return {"id": id_, "fields": fields}


async def test_optimistic_value_is_visible_before_mutate_returns(client: QueryClient, gate: Gate) -> None:
    client.set_query_data(("todos", 1), {"title": "a", "done": False})
    obs = client.observe(("todos", 1), stale_time=float("inf"))
    seen: list[Any] = []
    obs.subscribe(lambda r: seen.append(r.data))
    origins: list[Any] = []
    client.replica.on_update(lambda doc, upd, origin: origins.append(origin))
    client.mutate(edit(1, title="b"), mutation_fn=gate.fn, optimistic=merge_fields)
    assert seen[-1] == {"title": "b", "done": False}
    assert [o.kind for o in origins] == [OriginKind.MUTATION]  # one transaction, the mutation's own origin


async def test_rollback_reverts_only_that_mutations_fields(client: QueryClient, gate: Gate) -> None:
    client.set_query_data(("todos", 1), {"title": "a", "done": False, "tags": ["x"]})
    m1 = client.mutate(edit(1, title="b"), mutation_fn=gate.fn, optimistic=merge_fields)
    m2 = client.mutate(edit(1, done=True), mutation_fn=gate.fn, optimistic=merge_fields)
    client.set_query_data(("todos", 1), lambda d: {**d, "tags": ["x", "y"]})  # a later local write
    await gate.wait_calls(2)
    gate.fail(RuntimeError("m1 fails"))
    with pytest.raises(RuntimeError):
        await m1.result()
    assert client.get_query_data(("todos", 1)) == {"title": "a", "done": True, "tags": ["x", "y"]}
    gate.ok()
    await m2.result()
    assert client.get_query_data(("todos", 1)) == {"title": "a", "done": True, "tags": ["x", "y"]}


async def test_rollback_never_overwrites_newer_data(client: QueryClient, gate: Gate) -> None:
    client.set_query_data(("todos", 1), {"title": "a"})
    m1 = client.mutate(edit(1, title="b"), mutation_fn=gate.fn, optimistic=merge_fields)
    m2 = client.mutate(edit(1, title="c"), mutation_fn=gate.fn, optimistic=merge_fields)
    await gate.wait_calls(2)
    gate.fail(RuntimeError("m1"))
    with pytest.raises(RuntimeError):
        await m1.result()
    assert client.get_query_data(("todos", 1)) == {"title": "c"}  # m2's newer value survives m1's rollback
    gate.fail(RuntimeError("m2"))
    with pytest.raises(RuntimeError):
        await m2.result()
    assert client.get_query_data(("todos", 1)) == {"title": "a"}  # both gone: the base


async def test_delete_and_create_roll_back(client: QueryClient, gate: Gate) -> None:
    client.set_query_data(("todos", 1), {"title": "a"})
    m1 = client.mutate(1, mutation_fn=gate.fn, optimistic=lambda tx, v: tx.delete(("todos", v)))
    m2 = client.mutate(2, mutation_fn=gate.fn, optimistic=lambda tx, v: tx.set(("todos", v), {"title": "new"}))
    assert client.get_query_data(("todos", 1)) is None
    assert client.get_query_data(("todos", 2)) == {"title": "new"}
    await gate.wait_calls(2)
    gate.fail(RuntimeError())
    gate.fail(RuntimeError())
    await asyncio.gather(m1.wait_settled(), m2.wait_settled())
    assert client.get_query_data(("todos", 1)) == {"title": "a"}
    assert client.replica.read(("todos", 2)) is MISSING


async def test_fetch_started_before_the_mutation_never_reverts_it(client: QueryClient, gate: Gate) -> None:
    """TanStack #439: a refetch in flight when the mutation starts returns the old value."""
    server = {"title": "a", "done": False}
    release = asyncio.Event()

    async def fetch(ctx: QueryFunctionContext) -> Any:
        snapshot = dict(server)  # what the server had when the request was made
        await release.wait()
        return snapshot

    release.set()
    await client.fetch_query(("todos", 1), fetch, stale_time=0)
    release.clear()
    obs = client.observe(("todos", 1), fetch, stale_time=0)
    seen: list[Any] = []
    obs.subscribe(lambda r: seen.append(r.data["title"] if r.data else None))
    refetch = asyncio.ensure_future(obs.refetch())
    await asyncio.sleep(0)
    m = client.mutate(edit(1, title="b"), mutation_fn=gate.fn, optimistic=merge_fields)
    release.set()
    await refetch
    assert client.get_query_data(("todos", 1))["title"] == "b"
    await gate.wait_calls(1)
    server["title"] = "b"
    gate.ok()
    await m.result()
    await obs.refetch()
    assert client.get_query_data(("todos", 1))["title"] == "b"
    assert "a" not in seen[seen.index("b"):]  # never flickered back once shown


async def test_failed_mutation_falls_back_to_the_latest_server_answer(client: QueryClient, gate: Gate) -> None:
    server = {"title": "a", "done": False}

    async def fetch(ctx: QueryFunctionContext) -> Any:
        return dict(server)

    await client.fetch_query(("todos", 1), fetch)
    m = client.mutate(edit(1, title="mine"), mutation_fn=gate.fn, optimistic=merge_fields)
    server.update(title="theirs", done=True)
    await client.fetch_query(("todos", 1), fetch, stale_time=0)
    assert client.get_query_data(("todos", 1)) == {"title": "mine", "done": True}  # pending field kept
    await gate.wait_calls(1)
    gate.fail(RuntimeError())
    await m.wait_settled()
    assert client.get_query_data(("todos", 1)) == {"title": "theirs", "done": True}


async def test_success_keeps_the_value_until_the_server_answers(client: QueryClient, gate: Gate) -> None:
    server = {"title": "a"}

    async def fetch(ctx: QueryFunctionContext) -> Any:
        return dict(server)

    await client.fetch_query(("todos", 1), fetch)
    m = client.mutate(edit(1, title="b"), mutation_fn=gate.fn, optimistic=merge_fields,
                      on_settled=lambda d, e, v, c: client.invalidate_queries(("todos",), refetch_type="all"))
    await client.fetch_query(("todos", 1), fetch, stale_time=0)  # stale answer while pending
    assert client.get_query_data(("todos", 1)) == {"title": "b"}
    await gate.wait_calls(1)
    server["title"] = "B (normalised by the server)"
    gate.ok()
    await m.result()
    assert client.get_query_data(("todos", 1)) == {"title": "B (normalised by the server)"}


async def test_mutations_inside_a_batch_are_one_transaction(client: QueryClient, gate: Gate) -> None:
    client.set_query_data(("todos", 1), {"title": "a"})
    client.set_query_data(("todos", 2), {"title": "b"})
    obs = client.observe(("todos", 1), stale_time=float("inf"))
    notified: list[Any] = []
    obs.subscribe(notified.append)
    updates: list[bytes] = []
    client.replica.on_update(lambda doc, upd, origin: updates.append(upd))
    with client.batch():
        m1 = client.mutate(edit(1, title="x"), mutation_fn=gate.fn, optimistic=merge_fields)
        m2 = client.mutate(edit(2, title="y"), mutation_fn=gate.fn, optimistic=merge_fields)
        client.mutate(edit(1, title="z"), mutation_fn=gate.fn, optimistic=merge_fields)
    assert len(updates) == 1 and len(notified) == 1
    assert client.get_query_data(("todos", 1)) == {"title": "z"}
    await gate.wait_calls(3)
    gate.fail(RuntimeError())
    gate.fail(RuntimeError())
    await asyncio.gather(m1.wait_settled(), m2.wait_settled())
    assert client.get_query_data(("todos", 1)) == {"title": "z"}
    assert client.get_query_data(("todos", 2)) == {"title": "b"}


async def test_on_success_updates_several_queries_and_invalidates(client: QueryClient) -> None:
    """TanStack's 'update from mutation response' + 'invalidate' recipes, in one batch."""
    fetches: list[Any] = []

    async def fetch_list(ctx: QueryFunctionContext) -> Any:
        fetches.append(ctx.query_key)
        return [{"id": 1, "title": "server"}]

    obs = client.observe(("todos", "list"), fetch_list, stale_time=float("inf"))
    obs.subscribe(lambda r: None)
    await asyncio.sleep(0)
    await asyncio.wait_for(obs.query.fetch(), 1)
    fetches.clear()

    async def create(v: Any, ctx: Any) -> Any:
        return {"id": 2, "title": v}

    async def on_success(todo: Any, v: Any, c: Any) -> None:
        with client.batch():
            client.set_query_data(("todos", todo["id"]), todo)
            client.set_queries_data(("todos", "list"), lambda lst: [*lst, todo])
        await client.invalidate_queries(("todos", "list"))

    await client.mutate_async("new", mutation_fn=create, on_success=on_success)
    assert client.get_query_data(("todos", 2)) == {"id": 2, "title": "new"}
    assert fetches == [("todos", "list")]  # invalidated once, refetched once
