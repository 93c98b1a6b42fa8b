"""Field conflicts (remote peers, server answers) with each policy, and version conflicts."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from typing import Any

import pytest

from crdtsync import FakeClock, QueryClient, Replica
from crdtsync.errors import ConflictError, VersionConflictError
from crdtsync.mutations import ConflictDetected, FieldConflict, VersionConflictDetected
from crdtsync.query import QueryFunctionContext
from crdtsync.values import MISSING

from .conftest import Gate, Link, merge_fields


def edit(id_: int, **fields: Any) -> dict[str, Any]:
    return {"id": id_, "fields": fields}


@pytest.fixture
async def pair(clock: FakeClock) -> AsyncIterator[tuple[QueryClient, QueryClient, Link]]:
    # client ids fixed so that b's concurrent write wins the CRDT tie (higher id wins in Yjs)
    a = QueryClient(clock=clock, replica=Replica(client_id=1), rng=random.Random(1))
    b = QueryClient(clock=clock, replica=Replica(client_id=2), rng=random.Random(2))
    link = Link(a.replica, b.replica)
    a.set_query_data(("todos", 1), {"title": "base", "done": False})
    yield a, b, link
    for c in (a, b):
        await c.close_mutations()
        await c.close()


def conflicts_of(client: QueryClient) -> list[FieldConflict]:
    out: list[FieldConflict] = []
    client.mutation_cache.subscribe(lambda e: out.append(e.conflict) if isinstance(e, ConflictDetected) else None)
    return out


async def test_remote_conflict_is_reported_and_crdt_merge_converges(pair: Any, gate: Gate) -> None:
    a, b, link = pair
    seen = conflicts_of(a)
    link.cut()
    a.mutate(edit(1, title="from a"), mutation_fn=gate.fn, optimistic=merge_fields)
    b.set_query_data(("todos", 1), lambda d: {**d, "title": "from b", "done": True})
    link.heal()
    assert a.get_query_data(("todos", 1)) == b.get_query_data(("todos", 1)) == {"title": "from b", "done": True}
    [c] = seen
    assert (c.key, c.path, c.local, c.incoming, c.base, c.source, c.policy, c.resolved) == (
        ("todos", 1), ("1", "title"), "from a", "from b", "base", "remote", "crdt", "from b")


async def test_rollback_after_a_remote_win_leaves_the_remote_value(pair: Any, gate: Gate) -> None:
    a, b, link = pair
    link.cut()
    m = a.mutate(edit(1, title="from a", done=True), mutation_fn=gate.fn, optimistic=merge_fields)
    b.set_query_data(("todos", 1), lambda d: {**d, "title": "from b"})
    link.heal()
    await gate.wait_calls(1)
    gate.fail(RuntimeError())
    await m.wait_settled()
    expected = {"title": "from b", "done": False}
    assert a.get_query_data(("todos", 1)) == b.get_query_data(("todos", 1)) == expected


async def test_client_wins_rewrites_once_and_converges(pair: Any, gate: Gate) -> None:
    a, b, link = pair
    link.cut()
    a.mutate(edit(1, title="from a"), mutation_fn=gate.fn, optimistic=merge_fields, conflict_policy="client_wins")
    b.set_query_data(("todos", 1), lambda d: {**d, "title": "from b"})
    link.heal()
    assert a.get_query_data(("todos", 1))["title"] == b.get_query_data(("todos", 1))["title"] == "from a"


async def test_merge_function_per_query_prefix(pair: Any, gate: Gate) -> None:
    a, b, link = pair
    seen = conflicts_of(a)
    a.set_conflict_policy(("todos",), lambda c: " + ".join(sorted([c.local, c.incoming])))
    link.cut()
    a.mutate(edit(1, title="x"), mutation_fn=gate.fn, optimistic=merge_fields)
    b.set_query_data(("todos", 1), lambda d: {**d, "title": "y"})
    link.heal()
    assert a.get_query_data(("todos", 1))["title"] == b.get_query_data(("todos", 1))["title"] == "x + y"
    assert seen[0].policy == "merge" and seen[0].resolved == "x + y"


async def test_server_conflict_on_fetch_with_each_policy(client: QueryClient, gate: Gate) -> None:
    server = {"title": "a"}

    async def fetch(ctx: QueryFunctionContext) -> Any:
        return dict(server)

    seen = conflicts_of(client)
    await client.fetch_query(("todos", 1), fetch)
    client.mutate(edit(1, title="mine"), mutation_fn=gate.fn, optimistic=merge_fields)
    server["title"] = "theirs"
    await client.fetch_query(("todos", 1), fetch, stale_time=0)
    assert client.get_query_data(("todos", 1)) == {"title": "mine"}  # crdt: the user's value stays
    assert (seen[0].source, seen[0].local, seen[0].incoming, seen[0].base) == ("server", "mine", "theirs", "a")

    client.set_query_data(("todos", 2), {"title": "a"})
    client.mutate(edit(2, title="mine"), mutation_fn=gate.fn, optimistic=merge_fields, conflict_policy="server_wins")

    async def fetch2(ctx: QueryFunctionContext) -> Any:
        return {"title": "theirs"}

    await client.fetch_query(("todos", 2), fetch2, stale_time=0)
    assert client.get_query_data(("todos", 2)) == {"title": "theirs"}
    assert seen[-1].resolved == "theirs"


async def test_a_fetch_that_already_has_the_edit_is_no_conflict(client: QueryClient, gate: Gate) -> None:
    seen = conflicts_of(client)
    client.set_query_data(("todos", 1), {"title": "a"})
    client.mutate(edit(1, title="b"), mutation_fn=gate.fn, optimistic=merge_fields)

    async def fetch(ctx: QueryFunctionContext) -> Any:
        return {"title": "b"}

    await client.fetch_query(("todos", 1), fetch, stale_time=0)
    assert seen == []


async def test_version_conflict_is_resolved_and_retried(client: QueryClient) -> None:
    server = {"title": "server edit", "version": 2}
    calls: list[Any] = []

    async def put(v: Any, ctx: Any) -> Any:
        calls.append(dict(v))
        if v["version"] != server["version"]:
            raise VersionConflictError(server_value=dict(server), server_version=server["version"])
        server.update(title=v["title"], version=server["version"] + 1)
        return dict(server)

    def resolve(conflict: Any) -> Any:
        mine = conflict.variables["title"]
        return {"id": 1, "title": f"{conflict.server_value['title']} / {mine}", "version": conflict.server_version}

    events: list[Any] = []
    client.mutation_cache.subscribe(lambda e: events.append(e) if isinstance(e, VersionConflictDetected) else None)
    client.set_query_data(("todos", 1), {"title": "old", "version": 1})
    m = client.mutate({"id": 1, "title": "mine", "version": 1}, mutation_fn=put, resolve_conflict=resolve,
                      optimistic=lambda tx, v: tx.merge(("todos", 1), {"title": v["title"]}))
    assert client.get_query_data(("todos", 1))["title"] == "mine"
    data = await m.result()
    assert data == {"title": "server edit / mine", "version": 3}
    assert [c["version"] for c in calls] == [1, 2]
    assert client.get_query_data(("todos", 1))["title"] == "server edit / mine"  # re-applied optimistically
    assert m.state.variables["version"] == 2 and len(events) == 1


async def test_unresolved_version_conflict_fails_and_rolls_back(client: QueryClient) -> None:
    async def put(v: Any, ctx: Any) -> Any:
        raise VersionConflictError()

    client.set_query_data(("todos", 1), {"title": "old"})
    m = client.mutate({"id": 1, "fields": {"title": "mine"}}, mutation_fn=put, optimistic=merge_fields,
                      resolve_conflict=lambda c: None)
    with pytest.raises(ConflictError):
        await m.result()
    assert client.get_query_data(("todos", 1)) == {"title": "old"}


async def test_conflict_predicate_and_retry_limit(client: QueryClient) -> None:
    class HTTP409(Exception):
        status = 409

    attempts: list[int] = []

    async def put(v: Any, ctx: Any) -> Any:
        attempts.append(ctx.attempt)
        raise HTTP409()

    m = client.mutate(1, mutation_fn=put, is_conflict=lambda e: getattr(e, "status", 0) == 409,
                      resolve_conflict=lambda c: c.variables + 1, max_conflict_retries=2)
    with pytest.raises(ConflictError):
        await m.result()
    assert attempts == [1, 2, 3]


def test_missing_values_are_reported_as_missing() -> None:
    c = FieldConflict(("k",), "d", ("p",), "v", MISSING, MISSING, "remote", 1, "crdt")
    assert c.incoming is MISSING


async def test_a_failing_merge_function_falls_back_to_the_crdt_result(pair: Any, gate: Gate) -> None:
    a, b, link = pair

    def broken(conflict: FieldConflict) -> Any:
        raise ZeroDivisionError("bug in merge")

    link.cut()
    a.mutate(edit(1, title="x"), mutation_fn=gate.fn, optimistic=merge_fields, conflict_policy=broken)
    b.set_query_data(("todos", 1), lambda d: {**d, "title": "y"})
    link.heal()  # does not raise into the sync path
    assert a.get_query_data(("todos", 1))["title"] == b.get_query_data(("todos", 1))["title"] == "y"
