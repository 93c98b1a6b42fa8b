"""Restored mutations (outbox, hydrate): replaying the optimistic edit (review fixes)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from crdtsync import FakeClock, QueryClient

from .conftest import Server


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
    assert len(c2.mutations.outbox or []) == 1  # the row stays
    await c2.resume_paused_mutations()
    await m.result()
    assert server.calls == 1 and len(c2.mutations.outbox or []) == 0
    await c2.close_mutations()
