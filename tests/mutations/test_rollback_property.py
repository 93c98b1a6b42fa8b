"""Property: at every step, every field shows the last write that has not failed.

Local mutations (each changing one or two fields of the same entity), writes by a remote peer
(applied as REMOTE updates), direct local writes, and the success or failure of any pending
mutation, in any order. A failed mutation's rollback must revert exactly its own changes:
whatever other mutations, peers or local writes did to the same document and the same
entity's other fields (or the same field, later) stays. Peer and local writes are diffs, so the model
records only the fields whose value they changed; a mutation's ``merge`` owns every field it names.
"""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from .conftest import linked_client_and_peer

FIELDS = ("a", "b", "c")
KEY = ("items", 1)

field = st.sampled_from(FIELDS)
value = st.integers(0, 5)
op = st.one_of(
    st.tuples(st.just("mutate"), st.dictionaries(field, value, min_size=1, max_size=2)),
    st.tuples(st.just("remote"), st.dictionaries(field, value, min_size=1, max_size=1)),
    st.tuples(st.just("local"), st.dictionaries(field, value, min_size=1, max_size=1)),
    st.tuples(st.just("succeed"), st.integers(0, 20)),
    st.tuples(st.just("fail"), st.integers(0, 20)),
)


async def scenario(ops: list[tuple[str, Any]]) -> None:
    client, peer = linked_client_and_peer()
    initial = {f: -1 for f in FIELDS}
    client.set_query_data(KEY, initial)
    # The reference model: the list of writes (writer, fields); failed mutations are dropped.
    writes: list[tuple[Any, dict[str, int]]] = [("init", initial)]
    futures: dict[int, asyncio.Future[Any]] = {}
    pending: list[int] = []
    mutations: dict[int, Any] = {}

    async def fn(v: Any, ctx: Any) -> Any:
        return await futures[v["n"]]

    for kind, arg in ops:
        if kind in ("remote", "local"):
            # writes are diffs: a field set to the value it already shows is not written at all
            shown = client.get_query_data(KEY)
            arg = {f: v for f, v in arg.items() if shown[f] != v}
        if kind == "mutate":
            n = len(futures)
            futures[n] = asyncio.get_running_loop().create_future()
            mutations[n] = client.mutate({"n": n, "fields": arg}, mutation_fn=fn,
                                         optimistic=lambda tx, v: tx.merge(KEY, v["fields"]))
            writes.append((n, arg))
            pending.append(n)
        elif kind == "remote":
            peer.write(KEY, {**peer.read(KEY), **arg})
            writes.append(("remote", arg))
        elif kind == "local":
            client.set_query_data(KEY, lambda d, arg=arg: {**d, **arg})
            writes.append(("local", arg))
        elif pending:
            n = pending.pop(arg % len(pending))
            if kind == "succeed":
                futures[n].set_result("ok")
            else:
                futures[n].set_exception(RuntimeError("fail"))
                writes = [w for w in writes if w[0] != n]
            await mutations[n].wait_settled()
        expected: dict[str, int] = {}
        for _, fields in writes:
            expected.update(fields)
        assert client.get_query_data(KEY) == expected, (ops, writes)
        assert peer.read(KEY) == expected  # the peer converged on the same values
    for n in list(pending):
        futures[n].set_result("ok")
        await mutations[n].wait_settled()
    assert client.overlay.pending_leaves() == []
    await client.close_mutations()
    client.replica.close()
    peer.close()


@settings(max_examples=300, deadline=None)
@given(st.lists(op, max_size=25))
def test_rollback_reverts_exactly_its_own_changes(ops: list[tuple[str, Any]]) -> None:
    asyncio.run(scenario(ops))
