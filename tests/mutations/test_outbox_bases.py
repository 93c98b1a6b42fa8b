"""The field bases stored with a durable mutation follow the in-memory bases.

A fetch (or a peer's change) that lands while a mutation is pending makes the fetched value the
base under the optimistic edit. The outbox row must follow, so that after a restart a failing
mutation rolls back to that value, not to the one the field held when the mutation started.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import pytest

from crdtsync import FakeClock, QueryClient
from crdtsync.mutations.overlay import decode_bases

from .conftest import merge_fields

KEY = ("todos", 1)
MKEY = ("todos", "update")


def _client(clock: FakeClock | None = None) -> QueryClient:
    return QueryClient(clock=clock or FakeClock(), rng=random.Random(7))


def _edit(**fields: Any) -> dict[str, Any]:
    return {"id": 1, "fields": fields}


class FetchServer:
    """The server side of the ``("todos", 1)`` query; the test changes ``row`` by hand."""

    def __init__(self, **row: Any) -> None:
        self.row = dict(row)

    async def fetch(self, ctx: Any) -> Any:
        return dict(self.row)


async def _blocked(v: Any, ctx: Any) -> Any:
    await asyncio.Event().wait()  # never answers: the mutation stays pending until the restart


async def _reject(v: Any, ctx: Any) -> Any:
    raise RuntimeError("server rejects")


async def _restart_and_reject(ob: str, cache: str | None) -> dict[str, Any]:
    """A new process on the same outbox (and persisted cache, when given): the restored
    mutation is resumed, fails, and what the field shows after its rollback is returned."""
    from crdtsync.offline import ReplicaPersister

    c = _client()
    c.set_mutation_defaults(MKEY, mutation_fn=_reject, optimistic=merge_fields)
    p = ReplicaPersister(c, cache, clock=c.clock) if cache is not None else None
    if p is not None:
        await p.open()
    [m] = c.use_outbox(ob)
    await c.resume_paused_mutations()
    with pytest.raises(RuntimeError, match="server rejects"):
        await asyncio.wait_for(m.result(), 2)
    shown = dict(c.get_query_data(KEY))
    await c.close_mutations()
    if p is not None:
        await p.close()
    return shown


@pytest.mark.parametrize("with_cache", [True, False])
async def test_rollback_after_restart_restores_the_value_fetched_while_pending(
        tmp_path: Path, with_cache: bool) -> None:
    from crdtsync.offline import ReplicaPersister

    ob, cache = str(tmp_path / "outbox.db"), str(tmp_path / "cache.db")
    server = FetchServer(title="old", done=False)
    c1 = _client()
    p1 = ReplicaPersister(c1, cache, clock=c1.clock)
    await p1.open()
    c1.use_outbox(ob)
    await c1.fetch_query(KEY, server.fetch)
    m = c1.mutate(_edit(title="mine"), mutation_key=MKEY, optimistic=merge_fields, mutation_fn=_blocked)
    assert c1.get_query_data(KEY) == {"title": "mine", "done": False}

    server.row = {"title": "fetched", "done": True}  # someone else changed it meanwhile
    await c1.fetch_query(KEY, server.fetch, stale_time=0)
    assert c1.get_query_data(KEY) == {"title": "mine", "done": True}  # rebased, not reverted
    assert m.state.status == "pending"
    assert c1.overlay.bases_of(m.mutation_id) == {("todos", ("1", "title")): "fetched"}
    [row] = c1.mutation_cache.outbox.pending()  # type: ignore[union-attr]
    assert decode_bases(row.bases) == {("todos", ("1", "title")): "fetched"}
    await c1.close_mutations()  # the "crash": the mutation never settled, its row stays
    await p1.close()

    shown = await _restart_and_reject(ob, cache if with_cache else None)
    assert shown["title"] == "fetched"  # the fetched value, not "old"


def _row_bases(client: QueryClient) -> dict[str, dict[Any, Any]]:
    """idempotency key -> decoded stored bases, for every outbox row."""
    outbox = client.mutation_cache.outbox
    assert outbox is not None
    return {rec.idempotency_key: decode_bases(rec.bases) for rec in outbox.pending()}


def _assert_rows_follow(client: QueryClient) -> None:
    """Every durable pending mutation's row holds the bases the overlay holds in memory."""
    rows = _row_bases(client)
    for m in client.mutation_cache.get_all():
        if m.state.status == "pending" and m.idempotency_key in rows:
            assert rows[m.idempotency_key] == client.overlay.bases_of(m.mutation_id), m


async def test_one_update_per_changed_mutation_per_fetch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    c = _client()
    c.use_outbox(str(tmp_path / "outbox.db"))
    server = FetchServer(title="t0", n=0, done=False, other="x")
    await c.fetch_query(KEY, server.fetch)
    m1 = c.mutate(_edit(title="t1", n=1), mutation_key=MKEY, optimistic=merge_fields, mutation_fn=_blocked)
    m2 = c.mutate(_edit(done=True), mutation_key=MKEY, optimistic=merge_fields, mutation_fn=_blocked)
    m3 = c.mutate(_edit(n=3), mutation_key=MKEY, optimistic=merge_fields, mutation_fn=_blocked)
    writes: list[list[str]] = []  # per commit: the rows updated
    ob = c.mutation_cache.outbox
    assert ob is not None
    real = ob.set_bases_many

    def counting(rows: Any) -> None:
        writes.append(sorted(ikey for ikey, _ in rows))
        real(rows)

    monkeypatch.setattr(ob, "set_bases_many", counting)
    monkeypatch.setattr(ob, "set_bases", lambda *a: pytest.fail("one row at a time"))

    server.row = {"title": "s1", "n": 10, "done": True, "other": "y"}  # every field changed
    await c.fetch_query(KEY, server.fetch, stale_time=0)
    assert writes == [sorted([m1.idempotency_key, m2.idempotency_key, m3.idempotency_key])]
    _assert_rows_follow(c)

    writes.clear()
    server.row["other"] = "z"  # a field no mutation edits: no base changes
    await c.fetch_query(KEY, server.fetch, stale_time=0)
    assert writes == []

    server.row["n"] = 11  # m1 and m3 both sit on n (same base), m2 does not
    await c.fetch_query(KEY, server.fetch, stale_time=0)
    assert writes == [sorted([m1.idempotency_key, m3.idempotency_key])]
    assert c.get_query_data(KEY) == {"title": "t1", "n": 3, "done": True, "other": "z"}
    _assert_rows_follow(c)
    await c.close_mutations()


async def test_a_normalized_fetch_updates_the_stored_base(tmp_path: Path) -> None:
    from crdtsync.normalize import EntityType

    todo = EntityType("todo", id="id")
    ob = str(tmp_path / "outbox.db")

    def rename(tx: Any, v: Any) -> None:
        tx.merge_entity(todo, v["id"], {"title": v["title"]})

    row = {"id": 1, "title": "old", "done": False}

    async def fetch(ctx: Any) -> Any:
        return dict(row)

    c1 = _client()
    c1.set_query_defaults(("todo",), normalize=todo)
    c1.use_outbox(ob)
    await c1.fetch_query(("todo", 1), fetch)
    m = c1.mutate({"id": 1, "title": "mine"}, mutation_key=("todo", "rename"), optimistic=rename,
                  mutation_fn=_blocked)
    row.update(title="fetched", done=True)
    await c1.fetch_query(("todo", 1), fetch, stale_time=0)
    assert c1.get_query_data(("todo", 1)) == {"id": 1, "title": "mine", "done": True}
    assert _row_bases(c1) == {m.idempotency_key: {(todo.doc_id("1"), ("1", "title")): "fetched"}}
    await c1.close_mutations()

    c2 = _client()
    c2.set_mutation_defaults(("todo", "rename"), mutation_fn=_reject, optimistic=rename)
    [m2] = c2.use_outbox(ob)
    assert c2.replica.read_path(todo.doc_id("1"), ("1", "title")) == "mine"  # replayed
    await c2.resume_paused_mutations()
    with pytest.raises(RuntimeError):
        await asyncio.wait_for(m2.result(), 2)
    assert c2.replica.read_path(todo.doc_id("1"), ("1", "title")) == "fetched"
    await c2.close_mutations()


async def test_a_peer_change_under_a_pending_edit_updates_the_stored_base(tmp_path: Path) -> None:
    from crdtsync import Replica

    from .conftest import Link

    ob = str(tmp_path / "outbox.db")
    clock = FakeClock()
    a = QueryClient(clock=clock, replica=Replica(client_id=1), rng=random.Random(1))
    b = QueryClient(clock=clock, replica=Replica(client_id=2), rng=random.Random(2))
    Link(a.replica, b.replica)
    a.use_outbox(ob)
    a.set_query_data(KEY, {"title": "old", "done": False})
    m = a.mutate(_edit(title="mine"), mutation_key=MKEY, optimistic=merge_fields, mutation_fn=_blocked,
                 conflict_policy="client_wins")
    # one peer transaction changing the edited field and another one
    b.set_query_data(KEY, lambda d: {**d, "title": "theirs", "done": True})
    assert a.get_query_data(KEY) == {"title": "mine", "done": True}  # client_wins rewrote it
    assert _row_bases(a) == {m.idempotency_key: {("todos", ("1", "title")): "theirs"}}
    await a.close_mutations()
    await b.close_mutations()

    assert (await _restart_and_reject(ob, None))["title"] == "theirs"


async def test_a_resolved_version_conflict_stores_the_bases_of_its_new_fields(tmp_path: Path) -> None:
    from crdtsync.errors import VersionConflictError
    from crdtsync.offline import ReplicaPersister

    ob, cache = str(tmp_path / "outbox.db"), str(tmp_path / "cache.db")
    c1 = _client()
    p1 = ReplicaPersister(c1, cache, clock=c1.clock)
    await p1.open()
    c1.use_outbox(ob)
    c1.set_query_data(KEY, {"title": "old", "done": False})
    conflicted = asyncio.Event()

    async def put(v: Any, ctx: Any) -> Any:
        if ctx.attempt == 1:
            raise VersionConflictError()
        conflicted.set()
        await asyncio.Event().wait()

    m = c1.mutate(_edit(title="mine"), mutation_key=MKEY, optimistic=merge_fields, mutation_fn=put,
                  resolve_conflict=lambda vc: _edit(title="mine", done=True))
    await asyncio.wait_for(conflicted.wait(), 2)
    assert c1.get_query_data(KEY) == {"title": "mine", "done": True}
    assert _row_bases(c1) == {m.idempotency_key: {("todos", ("1", "title")): "old",
                                                  ("todos", ("1", "done")): False}}
    await c1.close_mutations()
    await p1.close()

    assert await _restart_and_reject(ob, cache) == {"title": "old", "done": False}


async def test_dehydrate_carries_the_fetched_base_and_a_hydrated_row_follows_later_fetches(
        tmp_path: Path) -> None:
    from crdtsync.offline import dehydrate, hydrate
    from crdtsync.offline.dehydrate import decode

    server = FetchServer(title="old")
    c1 = _client()
    await c1.fetch_query(KEY, server.fetch)
    c1.online_manager.set_online(False)
    m = c1.mutate(_edit(title="mine"), mutation_key=MKEY, optimistic=merge_fields, mutation_fn=_blocked)
    server.row["title"] = "fetched"
    await c1.fetch_query(KEY, server.fetch, stale_time=0, network_mode="always")
    assert m.state.is_paused and c1.get_query_data(KEY) == {"title": "mine"}
    blob = dehydrate(c1)
    [pm] = decode(blob).mutations
    assert dict(pm.bases) == {("todos", ("1", "title")): "fetched"}
    await c1.close_mutations()

    ob = str(tmp_path / "outbox.db")
    c2 = _client()
    c2.set_mutation_defaults(MKEY, mutation_fn=_blocked, optimistic=merge_fields)
    c2.use_outbox(ob)
    c2.online_manager.set_online(False)
    assert hydrate(c2, blob).mutations == 1
    assert list(_row_bases(c2).values()) == [{("todos", ("1", "title")): "fetched"}]
    server.row["title"] = "fetched again"
    await c2.fetch_query(KEY, server.fetch, stale_time=0, network_mode="always")
    assert list(_row_bases(c2).values()) == [{("todos", ("1", "title")): "fetched again"}]
    await c2.close_mutations()

    assert (await _restart_and_reject(ob, None))["title"] == "fetched again"


async def test_a_failing_base_write_is_logged_and_the_fetch_goes_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from crdtsync.errors import OutboxError

    c = _client()
    c.use_outbox(str(tmp_path / "outbox.db"))
    server = FetchServer(title="old")
    await c.fetch_query(KEY, server.fetch)
    m = c.mutate(_edit(title="mine"), mutation_key=MKEY, optimistic=merge_fields, mutation_fn=_blocked)
    ob = c.mutation_cache.outbox
    assert ob is not None

    def broken(*args: Any) -> None:
        raise OutboxError("disk full")

    monkeypatch.setattr(ob, "set_bases_many", broken)
    server.row["title"] = "fetched"
    with caplog.at_level("ERROR", logger="crdtsync.mutations"):
        assert await c.fetch_query(KEY, server.fetch, stale_time=0) == {"title": "mine"}  # rebased
    assert "cannot store the field bases" in caplog.text
    assert c.get_query_data(KEY) == {"title": "mine"}
    assert c.overlay.bases_of(m.mutation_id) == {("todos", ("1", "title")): "fetched"}
    await c.close_mutations()


async def test_a_fetch_after_close_mutations_does_not_touch_the_closed_outbox(tmp_path: Path) -> None:
    c = _client()
    c.use_outbox(str(tmp_path / "outbox.db"))
    server = FetchServer(title="old")
    await c.fetch_query(KEY, server.fetch)
    c.mutate(_edit(title="mine"), mutation_key=MKEY, optimistic=merge_fields, mutation_fn=_blocked)
    await c.close_mutations()
    server.row["title"] = "fetched"
    assert await c.fetch_query(KEY, server.fetch, stale_time=0) == {"title": "mine"}  # rebased, no error
    await c.close()


def test_set_bases_many_updates_rows_in_one_commit_and_wraps_errors(tmp_path: Path) -> None:
    from crdtsync.errors import OutboxError
    from crdtsync.mutations import Outbox

    ob = Outbox(str(tmp_path / "outbox.db"), synchronous="FULL")
    for k in ("k1", "k2", "k3"):
        ob.add(k, MKEY, None, {"v": k}, 1.0)
    ob.set_bases_many([("k1", [["d", ["a"], 1]]), ("k3", [["d", ["a"]]]), ("gone", [])])
    assert [r.bases for r in ob.pending()] == [[["d", ["a"], 1]], None, [["d", ["a"]]]]
    ob.set_bases_many([])  # nothing to do
    ob.add("k4", MKEY, None, 4, 1.0, commit=False)  # an open group commit: joined, not committed
    ob.set_bases_many([("k4", [["d", ["b"], 2]])])
    ob.commit()
    assert Outbox(str(tmp_path / "outbox.db")).pending()[-1].bases == [["d", ["b"], 2]]
    with pytest.raises(OutboxError):
        ob.set_bases_many([("k1", [["d", ["a"], object()]])])  # not serialisable
    ob.close()
    with pytest.raises(OutboxError):
        ob.set_bases_many([("k1", [])])  # closed


async def test_a_failing_base_write_after_a_resolved_conflict_is_logged(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from crdtsync.errors import OutboxError, VersionConflictError

    c = _client()
    c.use_outbox(str(tmp_path / "outbox.db"))
    c.set_query_data(KEY, {"title": "old", "done": False})
    ob = c.mutation_cache.outbox
    assert ob is not None

    def broken(*args: Any) -> None:
        raise OutboxError("disk full")

    async def put(v: Any, ctx: Any) -> Any:
        if ctx.attempt == 1:
            raise VersionConflictError()
        return "ok"

    with caplog.at_level("ERROR", logger="crdtsync.mutations"):
        m = c.mutate(_edit(title="mine"), mutation_key=MKEY, optimistic=merge_fields, mutation_fn=put,
                     resolve_conflict=lambda vc: _edit(title="mine", done=True))
        monkeypatch.setattr(ob, "set_bases", broken)  # the row was written; the resolved edit's is not
        assert await asyncio.wait_for(m.result(), 2) == "ok"
    assert "cannot store its field bases" in caplog.text
    assert c.get_query_data(KEY) == {"title": "mine", "done": True}
    await c.close_mutations()
