"""dehydrate / hydrate: CRDT merge (concurrent edits kept), filters, metadata, paused mutations."""

from __future__ import annotations

import contextlib
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crdtsync import FakeClock, QueryClient
from crdtsync.errors import HydrationError
from crdtsync.offline import dehydrate, hydrate
from crdtsync.offline.dehydrate import decode
from crdtsync.query.filters import QueryFilters
from crdtsync.replica import Replica
from crdtsync.testing.strategies import edit_ops


def const(value: Any) -> Any:
    async def fn(ctx: Any) -> Any:
        return value
    return fn


async def test_round_trip_with_metadata() -> None:
    clock = FakeClock()
    a = QueryClient(clock=clock)
    await a.fetch_query(("todo", 1), const({"title": "milk", "done": False}))
    await clock.advance(5)
    await a.fetch_query(("user", "me"), const({"name": "ann"}))
    blob = dehydrate(a)
    b = QueryClient(clock=clock)
    report = hydrate(b, blob)
    assert report.queries == 2 and report.docs == 2
    assert b.get_query_data(("todo", 1)) == {"title": "milk", "done": False}
    sa, sb = a.get_query_state(("user", "me")), b.get_query_state(("user", "me"))
    assert sa is not None and sb is not None
    assert sb.status == "success" and sb.data_updated_at == sa.data_updated_at


async def test_hydrate_merges_concurrent_edits_instead_of_overwriting() -> None:
    clock = FakeClock()
    a = QueryClient(clock=clock)
    await a.fetch_query(("todo", 1), const({"title": "milk", "done": False, "tags": ["x"]}))
    b = QueryClient(clock=clock)
    hydrate(b, dehydrate(a))
    # concurrent, offline: a renames, b ticks it off and adds a tag
    a.set_query_data(("todo", 1), lambda t: {**t, "title": "oat milk"})
    await clock.advance(1)
    b.set_query_data(("todo", 1), lambda t: {**t, "done": True, "tags": ["x", "y"]})
    hydrate(b, dehydrate(a))  # a's state is older by timestamp: TanStack would drop it
    hydrate(a, dehydrate(b))
    want = {"title": "oat milk", "done": True, "tags": ["x", "y"]}
    assert b.get_query_data(("todo", 1)) == want
    assert a.get_query_data(("todo", 1)) == want


async def test_metadata_taken_only_when_newer() -> None:
    clock = FakeClock()
    a = QueryClient(clock=clock)
    await a.fetch_query(("q",), const(1))
    old = dehydrate(a)
    await clock.advance(10)
    b = QueryClient(clock=clock)
    await b.fetch_query(("q",), const(1))
    hydrate(b, old)
    sb = b.get_query_state(("q",))
    assert sb is not None and sb.data_updated_at == clock.now()


async def test_filtered_dehydrate_exports_only_matching_queries_and_their_documents() -> None:
    a = QueryClient()
    await a.fetch_query(("todos", 1), const({"t": 1}))
    await a.fetch_query(("users", 1), const({"u": 1}))
    b = QueryClient()
    report = hydrate(b, dehydrate(a, QueryFilters(("todos",))))
    assert report.docs == 1 and report.queries == 1
    assert b.get_query_data(("todos", 1)) == {"t": 1}
    assert b.get_query_data(("users", 1)) is None


async def test_paused_mutations_travel_once() -> None:
    calls: list[Any] = []

    async def put(variables: Any, *rest: Any) -> Any:
        calls.append(variables)
        return variables

    a = QueryClient()
    a.set_mutation_defaults(("todo", "rename"), mutation_fn=put)
    a.online_manager.set_online(False)
    m = a.mutate({"id": 1, "title": "x"}, mutation_key=("todo", "rename"))
    await m.wait_progress()
    assert m.state.is_paused
    blob = dehydrate(a)
    b = QueryClient()
    b.set_mutation_defaults(("todo", "rename"), mutation_fn=put)
    first = hydrate(b, blob)
    again = hydrate(b, blob)
    assert (first.mutations, again.mutations, again.skipped_mutations) == (1, 0, 1)
    restored = b.mutation_cache.get_all()
    assert len(restored) == 1 and restored[0].idempotency_key == m.idempotency_key
    await b.resume_paused_mutations()
    await restored[0].result()
    assert calls == [{"id": 1, "title": "x"}]
    assert decode(dehydrate(a, include_mutations=False)).mutations == []
    assert len(decode(dehydrate(a)).mutations) == 1
    await a.close_mutations()
    await b.close_mutations()


@pytest.mark.parametrize("blob", [
    b"",
    b"\x00",
    msgpack.packb(["nope", 1, {}, [], []]),
    msgpack.packb(["crdtsync-dehydrated", 99, {}, [], []]),
    msgpack.packb(["crdtsync-dehydrated", 1, {"d": b"\xff\xff\xff"}, [], []]),
    msgpack.packb(["crdtsync-dehydrated", 1, {}, [[["k"], "weird", 1.0, False]], []]),
    msgpack.packb(["crdtsync-dehydrated", 1, {}, [], [["k", [], None, 1, 0.0]]]),
])
def test_bad_blob_raises_hydration_error_and_changes_nothing(blob: bytes) -> None:
    c = QueryClient()
    with pytest.raises(HydrationError):
        hydrate(c, blob)
    assert c.replica.doc_ids() == [] and len(c.query_cache) == 0


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=80))
def test_any_bytes_raise_only_hydration_error(blob: bytes) -> None:
    c = QueryClient()
    with contextlib.suppress(HydrationError):
        hydrate(c, blob)


ops = st.lists(edit_ops(doc_ids=("d1", "d2")), max_size=6)


@settings(max_examples=50, deadline=None)
@given(base=ops, left=ops, right=ops)
def test_hydrate_is_the_crdt_merge(base: Any, left: Any, right: Any) -> None:
    a, b = QueryClient(replica=Replica()), QueryClient(replica=Replica())
    for op in base:
        op.apply(a.replica)
    for d in a.replica.doc_ids():
        b.replica.apply_update(d, a.replica.get_update(d))
    for op in left:
        op.apply(a.replica)
    for op in right:
        op.apply(b.replica)
    ref = Replica()
    for r in (a.replica, b.replica):
        for d in r.doc_ids():
            ref.apply_update(d, r.get_update(d))
    hydrate(b, dehydrate(a))
    hydrate(a, dehydrate(b))
    for d in ref.doc_ids():
        assert a.replica.read_path(d, ()) == b.replica.read_path(d, ()) == ref.read_path(d, ())


async def test_hydrated_paused_mutations_are_written_to_the_durable_outbox(tmp_path: Any) -> None:
    async def put(variables: Any, *rest: Any) -> Any:
        return variables

    a = QueryClient()
    a.set_mutation_defaults(("todo", "rename"), mutation_fn=put)
    a.online_manager.set_online(False)
    m = a.mutate({"id": 1, "title": "x"}, mutation_key=("todo", "rename"))
    await m.wait_progress()
    b = QueryClient()
    b.online_manager.set_online(False)
    b.set_mutation_defaults(("todo", "rename"), mutation_fn=put)
    b.use_outbox(str(tmp_path / "outbox.sqlite3"))
    hydrate(b, dehydrate(a))
    hydrate(b, dehydrate(a))  # twice: still one row
    await b.close()  # "crash": the row must survive for the next process
    c = QueryClient()
    c.online_manager.set_online(False)
    c.set_mutation_defaults(("todo", "rename"), mutation_fn=put)
    resumed = c.use_outbox(str(tmp_path / "outbox.sqlite3"))
    assert [r.idempotency_key for r in resumed] == [m.idempotency_key]
    await a.close()
    await c.close()


def _merge_title(tx: Any, v: Any) -> None:
    tx.merge(("todos", 1), {"title": v["title"]})


def _paused_rename() -> tuple[QueryClient, bytes]:
    src = QueryClient(clock=FakeClock())
    src.set_query_data(("todos", 1), {"title": "old"})
    src.online_manager.set_online(False)
    src.mutate({"title": "new"}, mutation_key=("todos", "rename"), optimistic=_merge_title)
    return src, dehydrate(src)


async def test_hydrated_mutation_rolls_back_to_the_base_it_carried() -> None:
    src, blob = _paused_rename()
    assert decode(blob).mutations[0].bases == {("todos", ("1", "title")): "old"}

    async def reject(v: Any, *rest: Any) -> Any:
        raise RuntimeError("rejected")

    dst = QueryClient(clock=FakeClock())
    dst.set_mutation_defaults(("todos", "rename"), mutation_fn=reject, optimistic=_merge_title)
    hydrate(dst, blob)
    [m] = dst.mutation_cache.get_all()
    assert dst.get_query_data(("todos", 1)) == {"title": "new"}
    await dst.resume_paused_mutations()
    with pytest.raises(RuntimeError):
        await m.result()
    assert dst.get_query_data(("todos", 1)) == {"title": "old"}
    await src.close_mutations()
    await dst.close_mutations()


async def test_blob_without_bases_still_hydrates() -> None:
    src, blob = _paused_rename()
    raw = msgpack.unpackb(blob, raw=False)
    raw[4] = [item[:5] for item in raw[4]]  # as written before bases were carried
    [pm] = decode(msgpack.packb(raw, use_bin_type=True)).mutations
    assert pm.bases == {}
    await src.close_mutations()


async def test_settled_and_collected_mutation_is_not_hydrated_again() -> None:
    src, blob = _paused_rename()
    calls: list[Any] = []

    async def put(v: Any, *rest: Any) -> Any:
        calls.append(v)
        return v

    clock = FakeClock()
    dst = QueryClient(clock=clock)
    dst.set_mutation_defaults(("todos", "rename"), mutation_fn=put, optimistic=_merge_title)
    assert hydrate(dst, blob).mutations == 1
    await dst.resume_paused_mutations()
    [m] = dst.mutation_cache.get_all()
    await m.result()
    await clock.advance(m.options.gc_time + 1)
    assert dst.mutation_cache.get_all() == []
    again = hydrate(dst, blob)
    assert (again.mutations, again.skipped_mutations) == (0, 1)
    await dst.resume_paused_mutations()
    assert len(calls) == 1
    await src.close_mutations()
    await dst.close_mutations()


async def test_outbox_opened_after_hydrate_does_not_build_the_mutation_twice(tmp_path: Any) -> None:
    src, blob = _paused_rename()
    ob = str(tmp_path / "outbox.sqlite3")
    first = QueryClient(clock=FakeClock())
    first.online_manager.set_online(False)
    first.use_outbox(ob)
    hydrate(first, blob)  # the row is in the outbox file
    await first.close_mutations()
    dst = QueryClient(clock=FakeClock())
    dst.online_manager.set_online(False)
    hydrate(dst, blob)
    assert dst.use_outbox(ob) == []
    assert len(dst.mutation_cache.get_all()) == 1
    await src.close_mutations()
    await dst.close_mutations()
