"""Property: the bases stored in the outbox always equal the overlay's bases in memory.

Durable mutations (each changing one or two fields), fetches returning new server values,
writes by a remote peer, direct local writes, and the success or failure of any pending
mutation, in any order. After every step, each pending mutation's outbox row holds exactly the
bases a rollback would restore now, so a restart never rolls back to a stale value.
"""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from crdtsync.mutations import Outbox
from crdtsync.mutations.overlay import decode_bases

from .conftest import linked_client_and_peer

FIELDS = ("a", "b", "c")
KEY = ("items", 1)

field = st.sampled_from(FIELDS)
value = st.integers(0, 4)
op = st.one_of(
    st.tuples(st.just("mutate"), st.dictionaries(field, value, min_size=1, max_size=2)),
    st.tuples(st.just("fetch"), st.dictionaries(field, value, min_size=1, max_size=3)),
    st.tuples(st.just("remote"), st.dictionaries(field, value, min_size=1, max_size=2)),
    st.tuples(st.just("local"), st.dictionaries(field, value, min_size=1, max_size=1)),
    st.tuples(st.just("succeed"), st.integers(0, 20)),
    st.tuples(st.just("fail"), st.integers(0, 20)),
)


async def scenario(ops: list[tuple[str, Any]]) -> None:
    client, peer = linked_client_and_peer()
    outbox = Outbox(":memory:")
    client.use_outbox(outbox)
    server = {f: -1 for f in FIELDS}

    async def fetch(ctx: Any) -> Any:
        return dict(server)

    await client.fetch_query(KEY, fetch)
    futures: dict[int, asyncio.Future[Any]] = {}
    pending: list[int] = []
    mutations: dict[int, Any] = {}

    async def fn(v: Any, ctx: Any) -> Any:
        return await futures[v["n"]]

    for kind, arg in ops:
        if kind == "mutate":
            n = len(futures)
            futures[n] = asyncio.get_running_loop().create_future()
            mutations[n] = client.mutate({"n": n, "fields": arg}, mutation_key=("items", "edit"), mutation_fn=fn,
                                         optimistic=lambda tx, v: tx.merge(KEY, v["fields"]))
            pending.append(n)
        elif kind == "fetch":
            server.update(arg)
            await client.fetch_query(KEY, fetch, stale_time=0)
        elif kind == "remote":
            peer.write(KEY, {**peer.read(KEY), **arg})
        elif kind == "local":
            client.set_query_data(KEY, lambda d, arg=arg: {**d, **arg})
        elif pending:
            n = pending.pop(arg % len(pending))
            if kind == "succeed":
                futures[n].set_result("ok")
            else:
                futures[n].set_exception(RuntimeError("fail"))
            await mutations[n].wait_settled()
        rows = {rec.idempotency_key: decode_bases(rec.bases) for rec in outbox.pending()}
        assert sorted(rows) == sorted(mutations[n].idempotency_key for n in pending)
        for n in pending:
            m = mutations[n]
            assert rows[m.idempotency_key] == client.overlay.bases_of(m.mutation_id), (ops, n)
    for n in list(pending):
        futures[n].set_result("ok")
        await mutations[n].wait_settled()
    assert len(outbox) == 0
    await client.close_mutations()
    await client.close()
    peer.close()


@settings(max_examples=200, deadline=None)
@given(st.lists(op, max_size=20))
def test_stored_bases_follow_the_overlay(ops: list[tuple[str, Any]]) -> None:
    asyncio.run(scenario(ops))
