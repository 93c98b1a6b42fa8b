"""Regression tests for the entity store's fast paths (ce390bd, b9ce376, 030642f): entities
cached as written ("own write"), fresh slots, per-document referrer maps, EntityList.present
patching, and their interaction with listeners, batches, remote changes, release and GC."""

from __future__ import annotations

from typing import Any

import pytest

from crdtsync import FakeClock, QueryClient
from crdtsync.normalize import EntityType
from crdtsync.origins import remote_origin
from crdtsync.replica import Replica
from crdtsync.values import strict_equal

item = EntityType("sitem")
per_entity = EntityType("pitem", partition="entity", gc_time=30)
sharded = EntityType("shitem", partition=16, gc_time=30)
gc_item = EntityType("gitem", gc_time=30)


def make_client(clock: FakeClock | None = None) -> QueryClient:
    return QueryClient(clock=clock or FakeClock())


def returning(value: Any) -> Any:
    async def fn(ctx: Any) -> Any:
        return value

    return fn


def fresh_read(client: QueryClient, doc_id: str, eid: str) -> Any:
    """The entity as a fresh peer that received the document would read it."""
    peer = Replica()
    peer.apply_update(doc_id, client.replica.get_update(doc_id))
    return peer.read_path(doc_id, (eid,))


def exact(a: Any, b: Any) -> bool:
    """Strictly equal with identical container types all the way down (no tuple for a list)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(exact(v, b[k]) for k, v in a.items())
    if isinstance(a, list):
        return len(a) == len(b) and all(exact(x, y) for x, y in zip(a, b, strict=True))
    return strict_equal(a, b)


# -- own write vs. listeners that write during the flush ------------------------------------

async def test_change_listener_rewriting_an_entity_during_the_fetch_flush_wins() -> None:
    client = make_client()
    doc_id = item.doc_id("1")

    def rewrite(d: str, paths: list[tuple[Any, ...]], origin: Any) -> None:
        if d == doc_id and client.replica.read_path(doc_id, ("1",)) != {"id": 1, "t": "listener"}:
            client.replica.write_path(doc_id, ("1",), {"id": 1, "t": "listener"}, depth=item.depth)

    client.replica.on_change(rewrite)
    await client.fetch_query(("l",), returning([{"id": 1, "t": "fetched"}]), normalize=[item])
    assert client.replica.read_path(doc_id, ("1",)) == {"id": 1, "t": "listener"}
    assert client.entities.get(item, 1) == {"id": 1, "t": "listener"}
    assert client.get_query_data(("l",)) == [{"id": 1, "t": "listener"}]


async def test_watch_rewriting_an_entity_during_the_fetch_flush_wins() -> None:
    client = make_client()
    doc_id = item.doc_id("1")
    slot = client.replica.route(("w",))
    done: list[bool] = []

    def on_slot(origin: Any) -> None:
        if not done:
            done.append(True)
            client.replica.write_path(doc_id, ("1",), {"id": 1, "t": "watcher"}, depth=item.depth)

    client.replica.watch(slot.doc_id, slot.path, on_slot)
    await client.fetch_query(("w",), returning([{"id": 1, "t": "fetched"}]), normalize=[item])
    assert done
    assert client.entities.get(item, 1) == {"id": 1, "t": "watcher"}
    assert client.get_query_data(("w",)) == [{"id": 1, "t": "watcher"}]


async def test_watch_rewriting_the_slot_during_the_fetch_flush_wins() -> None:
    client = make_client()
    await client.fetch_query(("pre",), returning([{"id": 2, "t": "two"}]), normalize=[item])
    slot = client.replica.route(("s",))
    done: list[bool] = []

    def on_slot(origin: Any) -> None:
        if not done:
            done.append(True)
            client.replica.write(("s",), ["2"])

    client.replica.watch(slot.doc_id, slot.path, on_slot)
    await client.fetch_query(("s",), returning([{"id": 1, "t": "one"}]), normalize=[item])
    assert client.replica.read(("s",)) == ["2"]
    assert client.get_query_data(("s",)) == [{"id": 2, "t": "two"}]


# -- values that do not read back as written ------------------------------------------------

@pytest.mark.parametrize("etype", [item, per_entity, sharded], ids=["type", "entity", "shards"])
async def test_tuple_and_integral_float_fields_read_back_as_stored(etype: EntityType) -> None:
    client = make_client()
    ent = {"id": 1, "tags": ("a", "b"), "score": 2.0, "nested": {"xs": (1, 2.0)}}
    await client.fetch_query(("tf", etype.name), returning([ent]), normalize=[etype])
    want = {"id": 1, "tags": ["a", "b"], "score": 2.0, "nested": {"xs": [1, 2.0]}}
    got = client.entities.get(etype, 1)
    assert exact(got, want), got
    assert exact(client.get_query_data(("tf", etype.name))[0], want)
    assert exact(fresh_read(client, etype.doc_id("1"), "1"), want)


async def test_same_entity_twice_in_one_response_last_wins_in_cache_and_doc() -> None:
    for first, last in (({"id": 1, "t": "a"}, {"id": 1, "t": ("b",)}),
                        ({"id": 1, "t": ("a",)}, {"id": 1, "t": "b"}),
                        ({"id": 1, "t": "a"}, {"id": 1, "t": "b"})):
        client = make_client()
        await client.fetch_query(("dup",), returning([first, last]), normalize=[item])
        doc_value = fresh_read(client, item.doc_id("1"), "1")
        assert exact(client.entities.get(item, 1), doc_value)
        assert strict_equal(doc_value, {"id": 1, "t": list(last["t"]) if isinstance(last["t"], tuple) else last["t"]})
        assert client.get_query_data(("dup",)) == [doc_value]


async def test_same_entity_twice_on_an_existing_document_last_wins() -> None:
    client = make_client()
    await client.fetch_query(("seed",), returning([{"id": 1, "t": "0"}]), normalize=[item])
    await client.fetch_query(("dup2",), returning([{"id": 1, "t": "a"}, {"id": 1, "t": (2.0,)}]),
                             normalize=[item])
    assert exact(client.entities.get(item, 1), {"id": 1, "t": [2.0]})
    assert exact(fresh_read(client, item.doc_id("1"), "1"), {"id": 1, "t": [2.0]})


# -- patching big lists ---------------------------------------------------------------------

async def test_remote_transaction_changing_50_of_1000_patches_all_in_one_notification() -> None:
    a, b = make_client(), make_client()
    items = [{"id": i, "t": f"v{i}"} for i in range(1000)]
    await a.fetch_query(("big",), returning(items), normalize=[item])
    slot = a.replica.route(("big",)).doc_id
    for d in (slot, item.doc_id("0")):
        b.replica.apply_update(d, a.replica.get_update(d))
    seen: list[Any] = []
    obs = b.observe(("big",), normalize=[item], enabled=False)
    stop = obs.subscribe(lambda r: seen.append(r.data))
    before = b.get_query_data(("big",))
    assert len(before) == 1000
    sv = b.replica.state_vector(item.doc_id("0"))
    changed = set(range(3, 1000, 20))
    assert len(changed) == 50
    with a.replica.batch():
        for i in changed:
            a.entities.update(item, i, {"t": f"new{i}"})
    b.replica.apply_update(item.doc_id("0"), a.replica.get_update(item.doc_id("0"), sv),
                           origin=remote_origin("a"))
    assert len(seen) == 1
    after = seen[0]
    assert after is b.get_query_data(("big",))
    for i in range(1000):
        if i in changed:
            assert after[i] == {"id": i, "t": f"new{i}"}
        else:
            assert after[i] is before[i]
    stop()


@pytest.mark.parametrize("n_changed", [1, 20])
async def test_entity_referenced_singly_and_in_a_list_of_one_query_is_patched_everywhere(n_changed: int) -> None:
    client = make_client()
    rows = [{"id": i, "t": "x"} for i in range(30)]
    shape = {"featured": item, "all": [item]}
    await client.fetch_query(("mixed",), returning({"featured": rows[0], "all": rows}), normalize=shape)
    seen: list[Any] = []
    obs = client.observe(("mixed",), normalize=shape, enabled=False)
    stop = obs.subscribe(lambda r: seen.append(r.data))
    with client.replica.batch():
        for i in range(n_changed):
            client.entities.update(item, i, {"t": "changed"})
    data = client.get_query_data(("mixed",))
    assert data["featured"]["t"] == "changed"
    assert [r["t"] for r in data["all"][:n_changed]] == ["changed"] * n_changed
    stop()


async def test_entity_in_two_lists_of_one_query_is_patched_in_both() -> None:
    client = make_client()
    rows = [{"id": i, "t": "x"} for i in range(5)]
    shape = {"a": [item], "b": [item]}
    await client.fetch_query(("two",), returning({"a": rows, "b": rows[::-1]}), normalize=shape)
    obs = client.observe(("two",), normalize=shape, enabled=False)
    stop = obs.subscribe(lambda r: None)
    client.entities.update(item, 1, {"t": "y"})
    data = client.get_query_data(("two",))
    assert data["a"][1]["t"] == "y" and data["b"][3]["t"] == "y"
    stop()


# -- referrers, refcounts, refetch shapes ---------------------------------------------------

@pytest.mark.parametrize("etype", [gc_item, per_entity, sharded], ids=["type", "entity", "shards"])
async def test_shared_entity_referrers_and_refcounts_follow_release(etype: EntityType) -> None:
    clock = FakeClock()
    client = make_client(clock)
    o1 = client.observe(("q1", etype.name), returning([{"id": 1}, {"id": 2}]), normalize=[etype], gc_time=5)
    o2 = client.observe(("q2", etype.name), returning({"id": 2}), normalize=etype, gc_time=5)
    s1, s2 = o1.subscribe(lambda r: None), o2.subscribe(lambda r: None)
    await clock.settle()
    refs = client.entities.referenced_docs()
    if etype.partition == "type":
        assert refs == {etype.doc_id("1"): 3}
    else:
        assert sum(v for d, v in refs.items() if d.startswith(f"entity:{etype.name}")) == 3
    s1()
    await clock.advance(6)  # q1 collected
    assert client.query_cache.find(("q1", etype.name)) is None
    refs = client.entities.referenced_docs()
    assert refs == {etype.doc_id("2"): 1}
    # The surviving query still hears changes to entity 2.
    client.entities.update(etype, 2, {"x": 1})
    assert client.get_query_data(("q2", etype.name)) == {"id": 2, "x": 1}
    s2()
    await clock.advance(6)
    assert client.entities.referenced_docs() == {}
    await clock.advance(31)
    assert not any(d.startswith(f"entity:{etype.name}") for d in client.replica.doc_ids())


@pytest.mark.parametrize("etype", [item, per_entity, sharded], ids=["type", "entity", "shards"])
async def test_refetch_same_reordered_removed_added_ids(etype: EntityType) -> None:
    clock = FakeClock()
    client = make_client(clock)
    responses = [
        [{"id": i, "t": "a"} for i in range(40)],
        [{"id": i, "t": "a"} for i in range(40)],
        [{"id": i, "t": "a"} for i in reversed(range(40))],
        [{"id": i, "t": "b"} for i in range(10, 60)],
        [{"id": i, "t": "c"} for i in range(5)],
    ]
    key = ("rf", etype.name)
    for resp in responses:
        await client.fetch_query(key, returning(resp), normalize=[etype], stale_time=0)
        assert client.get_query_data(key) == resp
        ids = {str(e["id"]) for e in resp}
        assert sum(client.entities.referenced_docs().values()) == len(ids)
        # An edit to a referenced entity reaches the query; one to an unreferenced one does not.
        first = resp[0]["id"]
        client.entities.update(etype, first, {"t": "edited"})
        assert client.get_query_data(key)[0] == {"id": first, "t": "edited"}
        gone = next((i for i in range(60) if str(i) not in ids and client.entities.get(etype, i)), None)
        if gone is not None:
            data = client.get_query_data(key)
            client.entities.update(etype, gone, {"t": "nobody"})
            assert client.get_query_data(key) is data


# -- batches: no own-write mechanism --------------------------------------------------------

async def test_fetch_written_inside_client_batch_is_correct() -> None:
    client = make_client()
    await client.fetch_query(("b0",), returning([{"id": 1, "t": "old"}]), normalize=[item])
    assert client.entities.get(item, 1) == {"id": 1, "t": "old"}
    client.set_query_defaults(("b1",), normalize=[item])
    with client.batch():
        client.set_query_data(("b1",), [{"id": 1, "t": ("new",)}, {"id": 2, "t": 2.0}])
        client.replica.write_path(item.doc_id("2"), ("2",), {"id": 2, "t": "rewritten"}, depth=item.depth)
    assert exact(client.entities.get(item, 1), {"id": 1, "t": ["new"]})
    assert client.entities.get(item, 2) == {"id": 2, "t": "rewritten"}
    assert client.get_query_data(("b1",)) == [{"id": 1, "t": ["new"]}, {"id": 2, "t": "rewritten"}]
    assert client.get_query_data(("b0",)) == [{"id": 1, "t": ["new"]}]


async def test_fetch_inside_replica_batch_then_listener() -> None:
    client = make_client()
    client.set_query_defaults(("rb",), normalize=[item])
    with client.replica.batch():
        client.set_query_data(("rb",), [{"id": 7, "t": "in batch"}])
        client.replica.write_path(item.doc_id("7"), ("7",), {"id": 7, "t": "after"}, depth=item.depth)
    assert client.entities.get(item, 7) == {"id": 7, "t": "after"}
    assert client.get_query_data(("rb",)) == [{"id": 7, "t": "after"}]


# -- gc after the list query goes --------------------------------------------------------------

async def test_gc_collects_entity_document_after_list_query_removed() -> None:
    clock = FakeClock()
    client = make_client(clock)
    await client.fetch_query(("gl",), returning([{"id": i} for i in range(100)]), normalize=[gc_item])
    obs = client.observe(("gl",), normalize=[gc_item], enabled=False)
    stop = obs.subscribe(lambda r: None)
    assert client.entities.referenced_docs() == {gc_item.doc_id("0"): 100}
    stop()
    client.remove_queries(("gl",))
    assert client.entities.referenced_docs() == {}
    await clock.advance(29)
    assert gc_item.doc_id("0") in client.replica.doc_ids()
    await clock.advance(2)
    assert gc_item.doc_id("0") not in client.replica.doc_ids()
    assert client.entities.get(gc_item, 1) is None
