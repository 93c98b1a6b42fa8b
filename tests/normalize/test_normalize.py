"""Normalized entities: one copy per entity, every referencing query updated, monotonic reads,
list semantics, relations, windowed reads, garbage collection, notification coalescing."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crdtsync import FakeClock, QueryClient
from crdtsync.normalize import EntityType
from crdtsync.origins import remote_origin

todo = EntityType("todo", version="v")
plain_todo = EntityType("ptodo")
user = EntityType("user", id="login")
post = EntityType("post", relations={"author": user})


def make_client(clock: FakeClock | None = None, **kw: Any) -> QueryClient:
    return QueryClient(clock=clock or FakeClock(), **kw)


def returning(value: Any) -> Any:
    async def fn(ctx: Any) -> Any:
        return value

    return fn


async def test_entity_stored_once_and_every_referencing_query_updates() -> None:
    client = make_client()
    t1, t2 = {"id": 1, "title": "a", "v": 1}, {"id": 2, "title": "b", "v": 1}
    await client.fetch_query(("todos", "list"), returning([t1, t2]), normalize=[todo])
    await client.fetch_query(("todos", 1), returning(t1), normalize=todo)
    await client.fetch_query(("todos", 2), returning(t2), normalize=todo)
    # The list slot stores ids only; the entity lives once in entity:todo.
    assert client.replica.read(("todos", "list")) == ["1", "2"]
    assert client.replica.read_path("entity:todo", ("1",)) == t1
    counts = {"list": 0, "one": 0, "two": 0}
    stops = []
    for name, key in (("list", ("todos", "list")), ("one", ("todos", 1)), ("two", ("todos", 2))):
        obs = client.observe(key, normalize=todo if name != "list" else [todo], enabled=False)
        stops.append(obs.subscribe(lambda r, n=name: counts.__setitem__(n, counts[n] + 1)))
    client.entities.update(todo, 1, {"title": "A"})
    assert counts == {"list": 1, "one": 1, "two": 0}
    assert client.get_query_data(("todos", "list"))[0]["title"] == "A"
    assert client.get_query_data(("todos", 1))["title"] == "A"
    for s in stops:
        s()


async def test_remote_entity_update_reaches_referencing_queries() -> None:
    a, b = make_client(), make_client()
    t1 = {"id": 1, "title": "a", "v": 1}
    await a.fetch_query(("todos", "list"), returning([t1]), normalize=[todo])
    for doc in ("todos", "entity:todo"):
        b.replica.apply_update(doc, a.replica.get_update(doc))
    seen: list[Any] = []
    obs = b.observe(("todos", "list"), normalize=[todo], enabled=False)
    stop = obs.subscribe(lambda r: seen.append(r.data))
    sv = b.replica.state_vector("entity:todo")
    a.entities.update(todo, 1, {"title": "from a"})
    b.replica.apply_update("entity:todo", a.replica.get_update("entity:todo", sv), origin=remote_origin("a"))
    assert seen == [[{"id": 1, "title": "from a", "v": 1}]]
    stop()


@settings(max_examples=50, deadline=None)
@given(st.permutations([1, 2, 3, 4, 5]))
def test_versions_give_monotonic_reads_in_any_arrival_order(order: list[int]) -> None:
    async def run() -> None:
        client = make_client()
        for v in order:
            await client.fetch_query(("todos", 1), returning({"id": 1, "title": f"v{v}", "v": v}),
                                     normalize=todo, stale_time=0)
        assert client.get_query_data(("todos", 1))["v"] == 5
        # A list endpoint returning an older copy does not overwrite the newer one either.
        await client.fetch_query(("todos", "list"), returning([{"id": 1, "title": "old", "v": 2}]), normalize=[todo])
        assert client.get_query_data(("todos", "list")) == [{"id": 1, "title": "v5", "v": 5}]
        assert client.entities.skipped_stale >= 1

    asyncio.run(run())


async def test_without_version_a_slow_older_request_never_overwrites_a_newer_answer() -> None:
    clock = FakeClock()
    client = make_client(clock)
    slow_gate = asyncio.Event()

    async def slow(ctx: Any) -> Any:
        await slow_gate.wait()
        return [{"id": 1, "title": "stale"}]

    async def fast(ctx: Any) -> Any:
        return {"id": 1, "title": "fresh"}

    slow_task = asyncio.create_task(client.fetch_query(("ptodos", "list"), slow, normalize=[plain_todo]))
    await clock.settle()
    await clock.advance(1)
    await client.fetch_query(("ptodos", 1), fast, normalize=plain_todo)
    slow_gate.set()
    await slow_task
    assert client.get_query_data(("ptodos", "list")) == [{"id": 1, "title": "fresh"}]
    assert client.get_query_data(("ptodos", 1)) == {"id": 1, "title": "fresh"}


async def test_relations_are_normalized_and_followed() -> None:
    client = make_client()
    p = {"id": 7, "text": "hi", "author": {"login": "ada", "name": "Ada"}}
    await client.fetch_query(("posts", 7), returning(p), normalize=post)
    assert client.replica.read(("posts", 7)) == "7"
    assert client.replica.read_path("entity:post", ("7",)) == {"id": 7, "text": "hi", "author": "ada"}
    seen: list[Any] = []
    obs = client.observe(("posts", 7), normalize=post, enabled=False)
    stop = obs.subscribe(lambda r: seen.append(r.data))
    client.entities.update(user, "ada", {"name": "Ada Lovelace"})
    assert seen[-1]["author"]["name"] == "Ada Lovelace"
    stop()


async def test_concurrent_list_inserts_and_moves_keep_a_stable_order() -> None:
    a, b = make_client(), make_client()
    for c in (a, b):
        c.set_query_defaults(("todos", "list"), normalize=[todo])
    items = [{"id": i, "title": str(i), "v": 1} for i in range(5)]
    await a.fetch_query(("todos", "list"), returning(items), normalize=[todo])
    for doc in ("todos", "entity:todo"):
        b.replica.apply_update(doc, a.replica.get_update(doc))
    svs = {d: (a.replica.state_vector(d), b.replica.state_vector(d)) for d in ("todos", "entity:todo")}
    new_a = {"id": 10, "title": "from a", "v": 1}
    new_b = {"id": 11, "title": "from b", "v": 1}
    a.set_query_data(("todos", "list"), lambda cur: [cur[0], new_a, *cur[1:]])
    b.set_query_data(("todos", "list"), lambda cur: [cur[0], new_b, *cur[1:]])
    # both move item 3 to the front concurrently
    a.set_query_data(("todos", "list"), lambda cur: [cur[4], *cur[:4], *cur[5:]])
    b.set_query_data(("todos", "list"), lambda cur: [cur[4], *cur[:4], *cur[5:]])
    for d, (sva, svb) in svs.items():
        ua, ub = a.replica.get_update(d, svb), b.replica.get_update(d, sva)
        a.replica.apply_update(d, ub)
        b.replica.apply_update(d, ua)
    la, lb = a.get_query_data(("todos", "list")), b.get_query_data(("todos", "list"))
    assert la == lb
    ids = [t["id"] for t in la]
    assert sorted(ids) == [0, 1, 2, 3, 4, 10, 11]  # both inserts kept, the moved item once
    assert ids[0] == 3


async def test_windowed_read_of_a_large_list() -> None:
    client = make_client()
    items = [{"id": i, "title": f"t{i}", "v": 1} for i in range(5000)]
    await client.fetch_query(("todos", "all"), returning(items), normalize=[todo])
    window = client.entities.read_window(("todos", "all"), 2500, 2503, todo)
    assert [t["id"] for t in window] == [2500, 2501, 2502]


async def test_infinite_query_over_references() -> None:
    client = make_client()

    async def page(ctx: Any) -> Any:
        start = ctx.page_param
        return {"items": [{"id": i, "title": str(i), "v": 1} for i in range(start, start + 2)], "next": start + 2}

    shape = {"pages": [{"items": [todo]}]}
    await client.fetch_infinite_query(("feed",), page, initial_page_param=0,
                                      get_next_page_param=lambda last, *_: last["next"], normalize=shape, pages=2)
    stored = client.replica.read(("feed",))
    assert stored["pages"][1]["items"] == ["2", "3"]
    client.entities.update(todo, 3, {"title": "three"})
    assert client.get_query_data(("feed",))["pages"][1]["items"][1]["title"] == "three"


async def test_unreferenced_entity_documents_are_collected_after_gc_time() -> None:
    clock = FakeClock()
    client = make_client(clock)
    item = EntityType("item", partition="entity", gc_time=60)
    obs = client.observe(("items", 1), returning({"id": 1, "x": 1}), normalize=item, gc_time=10)
    stop = obs.subscribe(lambda r: None)
    await clock.settle()
    assert client.replica.has_doc("entity:item:1")
    stop()
    await clock.advance(11)  # the query is collected: it no longer references the entity
    assert client.get_query_state(("items", 1)) is None
    assert client.replica.has_doc("entity:item:1")
    await clock.advance(61)
    assert not client.replica.has_doc("entity:item:1")


async def test_bad_entities_are_typed_errors() -> None:
    from crdtsync.errors import InvalidValueError

    client = make_client()
    with pytest.raises(InvalidValueError):
        await client.fetch_query(("todos", "bad"), returning([{"title": "no id"}]), normalize=[todo])
    with pytest.raises(InvalidValueError):
        await client.fetch_query(("todos", "bad2"), returning("not a list"), normalize=[todo])
    from crdtsync.values import MISSING

    state = client.get_query_state(("todos", "bad"))
    assert state is not None and state.status == "error" and state.fetch_status == "idle"
    assert isinstance(state.error, InvalidValueError)
    assert client.replica.read(("todos", "bad")) is MISSING  # nothing half-written
    assert not client.replica.has_doc("entity:todo") or client.replica.read_path("entity:todo", ()) == {}


async def test_notify_tick_coalesces_a_burst_into_one_notification() -> None:
    clock = FakeClock()
    client = make_client(clock, notify_tick=0.05)
    peer = make_client()
    peer.set_query_data(("hot", 1), {"n": 0})
    client.replica.apply_update("hot", peer.replica.get_update("hot"))
    obs = client.observe(("hot", 1), enabled=False)
    seen: list[Any] = []
    stop = obs.subscribe(lambda r: seen.append(r.data["n"]))
    for i in range(1, 101):
        sv = client.replica.state_vector("hot")
        peer.set_query_data(("hot", 1), {"n": i})
        client.replica.apply_update("hot", peer.replica.get_update("hot", sv))
    assert seen == []
    await clock.advance(0.05)
    assert seen == [100]
    stop()


async def test_throttle_and_debounce() -> None:
    clock = FakeClock()
    client = make_client(clock)
    client.set_query_data(("t",), 0)
    thr = client.observe(("t",), enabled=False, throttle=1.0)
    deb = client.observe(("t",), enabled=False, debounce=0.5)
    t_seen: list[int] = []
    d_seen: list[int] = []
    stops = [thr.subscribe(lambda r: t_seen.append(r.data)), deb.subscribe(lambda r: d_seen.append(r.data))]
    for i in range(1, 6):
        client.set_query_data(("t",), i)
        await clock.advance(0.1)
    assert t_seen == [1] and d_seen == []
    await clock.advance(1.0)
    assert t_seen == [1, 5] and d_seen == [5]
    for s in stops:
        s()


async def test_change_feed_events_update_delete_and_filter() -> None:
    from crdtsync.errors import InvalidValueError
    from crdtsync.normalize import ChangeFeed

    client = make_client()
    rows = [{"id": i, "title": str(i), "v": 1, "p": 1} for i in range(3)]
    await client.fetch_query(("todos", "p1"), returning(rows), normalize=[todo])
    feed = ChangeFeed(client.entities, todo, where=lambda r: r.get("p") == 1)
    assert feed.apply({"op": "update", "record": {"id": 0, "title": "zero", "v": 2}}) is True
    assert feed.apply({"op": "update", "record": {"id": 0, "title": "older", "v": 1}}) is False
    assert feed.apply({"op": "insert", "record": {"id": 5, "title": "elsewhere", "v": 1, "p": 2}}) is False
    assert feed.apply({"op": "delete", "record": {"id": 1}}) is True
    assert [t["title"] for t in client.get_query_data(("todos", "p1"))] == ["zero", "2"]
    assert feed.ignored == 1 and client.entities.get(todo, 5) is None
    for bad in ({"op": "upsert", "record": {"id": 1}}, {"op": "update"}, {"op": "update", "record": {"x": 1}}):
        with pytest.raises(InvalidValueError):
            feed.apply(bad)


@pytest.mark.parametrize("entity_type", [plain_todo, todo])
async def test_a_local_edit_survives_a_fetch_that_started_before_it(entity_type: EntityType) -> None:
    client = make_client()
    key = ("edit-race", entity_type.name)
    row = {"id": 1, "title": "server", "v": 1}
    await client.fetch_query(key, returning([row]), normalize=[entity_type])
    gate = asyncio.Event()

    async def slow(ctx: Any) -> Any:
        await gate.wait()
        return [{"id": 1, "title": "server", "v": 1}]  # the same copy, fetched before the edit

    task = asyncio.create_task(client.fetch_query(key, slow, normalize=[entity_type], stale_time=0))
    for _ in range(20):  # let the fetch start (no time passes)
        if client.is_fetching():
            break
        await asyncio.sleep(0)
    assert client.is_fetching() == 1
    client.entities.update(entity_type, 1, {"title": "edited"})
    gate.set()
    await task
    assert client.get_query_data(key) == [{"id": 1, "title": "edited", "v": 1}]
    # A fetch that starts after the edit does apply.
    await client.fetch_query(key, returning([{"id": 1, "title": "server again", "v": 1}]), normalize=[entity_type])
    assert client.get_query_data(key)[0]["title"] == "server again"


async def test_optimistic_edit_by_key_of_a_normalized_query_is_a_typed_error() -> None:
    from crdtsync.errors import MutationError

    client = make_client()
    await client.fetch_query(("todos", 1), returning({"id": 1, "title": "a", "v": 1}), normalize=todo)

    async def save(variables: Any, *rest: Any) -> Any:
        return variables

    with pytest.raises(MutationError):
        await client.mutate_async({"title": "b"}, mutation_fn=save,
                                  optimistic=lambda tx, v: tx.merge(("todos", 1), v))
    assert client.get_query_data(("todos", 1)) == {"id": 1, "title": "a", "v": 1}
    await client.close()


async def test_an_entity_stored_after_the_query_was_read_appears() -> None:
    client = make_client()
    await client.fetch_query(("late",), returning([{"id": 1, "title": "a", "v": 1}]), normalize=[todo])
    obs = client.observe(("late",), normalize=[todo], enabled=False)
    seen: list[Any] = []
    stop = obs.subscribe(lambda r: seen.append(r.data))
    client.replica.write(("late",), ["1", "2"])  # the ids arrive before entity 2 (sync order)
    client.entities.write(todo, {"id": 2, "title": "b", "v": 1})
    assert [t["id"] for t in obs.get_current_result().data] == [1, 2]
    client.replica.write(("late-one",), "9")
    one = client.observe(("late-one",), normalize=todo, enabled=False)
    stop_one = one.subscribe(lambda r: None)
    assert one.get_current_result().data is None
    peer = make_client()  # entity 9 arrives from a peer, in a document this replica never had
    other = EntityType("other")
    peer.entities.write(other, {"id": 9, "title": "nine"})
    client.replica.write(("late-other",), "9")
    o3 = client.observe(("late-other",), normalize=other, enabled=False)
    stop3 = o3.subscribe(lambda r: None)
    client.replica.apply_update("entity:other", peer.replica.get_update("entity:other"))
    assert o3.get_current_result().data == {"id": 9, "title": "nine"}
    client.entities.write(todo, {"id": 9, "title": "nine", "v": 1})
    assert one.get_current_result().data == {"id": 9, "title": "nine", "v": 1}
    for s in (stop, stop_one, stop3):
        s()


async def test_set_query_data_on_a_normalized_key_survives_an_older_fetch() -> None:
    client = make_client()
    key = ("sq",)
    await client.fetch_query(key, returning([{"id": 1, "done": False}]), normalize=[plain_todo])
    gate = asyncio.Event()

    async def slow(ctx: Any) -> Any:
        await gate.wait()
        return [{"id": 1, "done": False}]

    task = asyncio.create_task(client.fetch_query(key, slow, normalize=[plain_todo]))
    for _ in range(20):
        if client.is_fetching():
            break
        await asyncio.sleep(0)
    client.set_query_data(key, [{"id": 1, "done": True}])
    gate.set()
    await task
    assert client.get_query_data(key) == [{"id": 1, "done": True}]
