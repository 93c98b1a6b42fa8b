"""Restored mutations (outbox, hydrate): replaying the optimistic edit (review fixes)."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from crdtsync import FakeClock, QueryClient
from crdtsync.mutations.outbox import pack_variables

from .conftest import Gate, Server, merge_fields


def _client() -> QueryClient:
    return QueryClient(clock=FakeClock(), rng=random.Random(7))


def bump(tx: Any, v: Any) -> None:
    tx.update(("todos", 1), lambda cur: {**cur, "title": v["title"]})  # raises when nothing is cached


async def test_restored_mutation_whose_replay_raises_is_still_sent(tmp_path: Path) -> None:
    ob = str(tmp_path / "outbox.db")
    c1 = _client()
    c1.use_outbox(ob)
    c1.set_query_data(("todos", 1), {"title": "old"})
    c1.online_manager.set_online(False)
    c1.mutate({"id": 1, "fields": {"title": "new"}, "title": "new"}, mutation_key=("todos", "rename"),
              optimistic=bump)
    await c1.close_mutations()

    c2 = _client()
    server = Server()
    c2.set_mutation_defaults(("todos", "rename"), mutation_fn=server.patch, optimistic=bump)
    [m] = c2.use_outbox(ob)  # nothing cached yet: the replay raises
    assert m.state.phase == "paused" and m.state.error is None
    assert len(c2.mutation_cache.outbox or []) == 1  # the row stays
    await c2.resume_paused_mutations()
    await m.result()
    assert server.calls == 1 and len(c2.mutation_cache.outbox or []) == 0
    await c2.close_mutations()


def _edit(title: str) -> dict[str, Any]:
    return {"id": 1, "fields": {"title": title}}


async def _rejecting_restart(ob: str, persister_first: bool, cache: str) -> dict[str, Any]:
    from crdtsync.offline import ReplicaPersister

    c = _client()

    async def reject(v: Any, ctx: Any) -> Any:
        raise RuntimeError("server rejects")

    c.set_mutation_defaults(("todos", "update"), mutation_fn=reject, optimistic=merge_fields)
    p = ReplicaPersister(c, cache, clock=c.clock)
    if persister_first:
        await p.open()
        [m] = c.use_outbox(ob)
    else:
        [m] = c.use_outbox(ob)
        await p.open()
    assert c.get_query_data(("todos", 1)) == {"title": "new"}
    await c.resume_paused_mutations()
    with pytest.raises(RuntimeError):
        await m.result()
    shown = c.get_query_data(("todos", 1))
    await c.close_mutations()
    await p.close()
    return dict(shown)


@pytest.mark.parametrize("persister_first", [True, False])
async def test_restored_mutation_rolls_back_to_the_stored_base(tmp_path: Path, persister_first: bool) -> None:
    from crdtsync.offline import ReplicaPersister

    ob, cache = str(tmp_path / "outbox.db"), str(tmp_path / "cache.db")
    c1 = _client()
    p1 = ReplicaPersister(c1, cache, clock=c1.clock)
    await p1.open()
    c1.use_outbox(ob)
    c1.set_query_data(("todos", 1), {"title": "old"})
    c1.online_manager.set_online(False)
    c1.mutate(_edit("new"), mutation_key=("todos", "update"), optimistic=merge_fields)
    await c1.close_mutations()
    await p1.close()
    assert await _rejecting_restart(ob, persister_first, cache) == {"title": "old"}


async def test_stored_base_follows_an_earlier_mutation_that_succeeded(tmp_path: Path, gate: Gate) -> None:
    from crdtsync.offline import ReplicaPersister

    ob, cache = str(tmp_path / "outbox.db"), str(tmp_path / "cache.db")
    c1 = _client()
    p1 = ReplicaPersister(c1, cache, clock=c1.clock)
    await p1.open()
    c1.use_outbox(ob)
    c1.set_query_data(("todos", 1), {"title": "old"})
    m1 = c1.mutate(_edit("mid"), mutation_key=("todos", "update"), optimistic=merge_fields,
                   mutation_fn=gate.fn, scope="t")
    c1.mutate(_edit("new"), mutation_key=("todos", "update"), optimistic=merge_fields,
              mutation_fn=gate.fn, scope="t")
    await gate.wait_calls(1)
    gate.ok()
    await m1.result()  # "mid" is the server's value now: the base under the second edit
    await c1.close_mutations()
    await p1.close()
    assert await _rejecting_restart(ob, True, cache) == {"title": "mid"}


async def test_outbox_from_before_bases_opens_and_restores(tmp_path: Path) -> None:
    ob = str(tmp_path / "outbox.db")
    db = sqlite3.connect(ob)
    db.execute("CREATE TABLE crdtsync_outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, idempotency_key TEXT NOT NULL"
               " UNIQUE, mutation_key TEXT NOT NULL, scope TEXT, variables BLOB NOT NULL, submitted_at REAL NOT NULL)")
    db.execute("INSERT INTO crdtsync_outbox (idempotency_key, mutation_key, scope, variables, submitted_at)"
               " VALUES ('k1', '[\"todos\", \"update\"]', NULL, ?, 1.0)", (pack_variables(_edit("new")),))
    db.commit()
    db.close()
    c = _client()
    c.set_mutation_defaults(("todos", "update"), optimistic=merge_fields)
    [m] = c.use_outbox(ob)
    assert m.idempotency_key == "k1" and c.get_query_data(("todos", 1)) == {"title": "new"}
    assert [r.bases for r in c.mutation_cache.outbox.pending()] == [None]  # type: ignore[union-attr]
    await c.close_mutations()
