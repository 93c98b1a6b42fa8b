"""Replica: routing, diff-writes, origins, watchers, sync between replicas."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings

from crdtsync.errors import InvalidValueError, RoutingError
from crdtsync.origins import FETCH, LOCAL, REMOTE, Origin, mutation_origin
from crdtsync.replica import Replica, Router
from crdtsync.values import MISSING
from tests.core.test_values import json_values


def make_recording() -> tuple[Replica, list[tuple[str, bytes, Origin]]]:
    r = Replica()
    updates: list[tuple[str, bytes, Origin]] = []
    r.on_update(lambda d, u, o: updates.append((d, u, o)))
    return r, updates


@settings(max_examples=150)
@given(json_values, json_values)
def test_diff_write_round_trip(first: Any, second: Any) -> None:
    """Any JSON-like value reads back equal (types included); writing it again is no update."""
    r, updates = make_recording()
    for value in (first, second, first):
        r.write(("d", "k"), value)
        assert r.read(("d", "k")) == value
        from crdtsync.values import strict_equal

        assert strict_equal(r.read(("d", "k")), value)
        before = len(updates)
        assert r.write(("d", "k"), value) is False
        assert len(updates) == before


@settings(max_examples=60)
@given(json_values, json_values)
def test_diff_writes_converge_on_a_peer(first: Any, second: Any) -> None:
    a, updates = make_recording()
    b = Replica()
    a.write(("d", "k"), first)
    a.write(("d", "k"), second)
    for doc_id, update, _ in updates:
        b.apply_update(doc_id, update)
    assert b.read(("d", "k")) == second


def test_ints_and_floats_keep_their_type() -> None:
    r = Replica()
    r.write(("d", "k"), {"i": 5, "f": 5.0, "g": 2.5, "big": 2**60, "b": True, "n": None, "l": [1, 1.0]})
    out = r.read(("d", "k"))
    assert type(out["i"]) is int and type(out["f"]) is float and type(out["g"]) is float
    assert out["big"] == 2**60 and type(out["big"]) is int
    assert out["b"] is True and out["n"] is None
    assert [type(x) for x in out["l"]] == [int, float]


def test_one_field_change_is_a_small_update() -> None:
    r, updates = make_recording()
    r.write(("todos", 5), {"title": "a" * 40, "done": False, "owner": "ada", "rank": 3, "tags": ["x", "y"]})
    r.write(("todos", 5), {"title": "a" * 40, "done": True, "owner": "ada", "rank": 3, "tags": ["x", "y"]})
    assert len(updates) == 2
    assert len(updates[1][1]) < 100
    assert len(updates[1][1]) < len(updates[0][1]) / 2


def test_default_routing() -> None:
    r = Replica()
    assert r.route(("todos", 5)).doc_id == "todos" and r.route(("todos", 5)).path == ("5",)
    assert r.route(("todos",)).path == ("$",)
    assert r.route(("todos", "list", {"page": 2})).path == ('["list",{"page":2}]',)


def test_custom_routes_win_over_the_default() -> None:
    router = Router()
    router.add(("project", "{pid}", "tasks"), doc="project:{pid}", path=("tasks",))
    router.add(("user", "{uid}", ...), doc="user:{uid}", path=("data",))
    r = Replica(router=router)
    assert r.route(("project", 7, "tasks")).doc_id == "project:7"
    assert r.route(("project", 7, "tasks")).path == ("tasks",)
    assert r.route(("user", "u1", "posts", 3)).path == ("data", "posts", "3")
    assert r.route(("project", 7)).doc_id == "project"  # falls to the default
    r.write(("project", 7, "tasks"), [1, 2])
    assert r.read(("project", 7, "tasks")) == [1, 2]
    assert r.read_path("project:7", ("tasks",)) == [1, 2]


def test_route_errors_are_typed() -> None:
    router = Router()
    with pytest.raises(RoutingError):
        router.add((), doc="x")
    router.add(("a", "{x}"), doc="d:{missing}")
    with pytest.raises(RoutingError):
        router.resolve(("a", 1))


def test_writing_through_a_plain_value_is_a_routing_error() -> None:
    router = Router()
    router.add(("x", "{id}"), doc="x", path=("{id}",))
    router.add(("x", "{id}", "sub"), doc="x", path=("{id}", "sub"))
    r = Replica(router=router)
    r.write(("x", 1), 5)
    with pytest.raises(RoutingError):
        r.write(("x", 1, "sub"), 1)
    assert r.read(("x", 1)) == 5


def test_invalid_values_leave_the_document_untouched() -> None:
    r, updates = make_recording()
    r.write(("d", "k"), {"a": 1})
    with pytest.raises(InvalidValueError):
        r.write(("d", "k"), {"a": float("nan")})
    assert r.read(("d", "k")) == {"a": 1}
    assert len(updates) == 1


def test_watchers_fire_once_per_transaction_with_the_origin() -> None:
    r = Replica()
    seen: dict[str, list[Origin]] = {"5": [], "6": [], "all": []}
    r.watch("todos", ("5",), seen["5"].append)
    r.watch("todos", ("6",), seen["6"].append)
    r.watch("todos", (), seen["all"].append)
    r.write(("todos", 5), {"a": 1, "b": {"c": 2}}, origin=FETCH)
    r.write(("todos", 5), {"a": 2, "b": {"c": 3}}, origin=mutation_origin(1))
    assert seen["5"] == [FETCH, mutation_origin(1)]
    assert seen["6"] == []
    assert seen["all"] == [FETCH, mutation_origin(1)]


def test_remote_updates_reach_watchers_with_remote_origin() -> None:
    a, updates = make_recording()
    b = Replica()
    seen: list[Origin] = []
    b.watch("todos", ("5",), seen.append)
    a.write(("todos", 5), {"title": "x"})
    a.write(("todos", 6), {"title": "y"})
    for d, u, _ in updates:
        b.apply_update(d, u)
    assert seen == [REMOTE]


def test_batch_is_one_update_per_document() -> None:
    r, updates = make_recording()
    seen: list[Origin] = []
    r.watch("todos", ("1",), seen.append)
    with r.batch(origin=LOCAL):
        for i in range(10):
            r.write(("todos", 1), {"n": i})
            r.write(("users", i), {"n": i})
        assert updates == []
    assert sorted(d for d, _, _ in updates) == ["todos", "users"]
    assert len(seen) == 1


def test_delete_and_missing() -> None:
    r = Replica()
    assert r.read(("nothing", 1)) is MISSING
    r.write(("d", 1), None)
    assert r.read(("d", 1)) is None
    assert r.delete(("d", 1)) is True
    assert r.read(("d", 1)) is MISSING
    assert r.delete(("d", 1)) is False


def test_concurrent_field_edits_merge() -> None:
    a, ua = make_recording()
    b, ub = make_recording()
    a.write(("t", 1), {"title": "x", "done": False})
    for d, u, _ in ua:
        b.apply_update(d, u)
    ua.clear()
    a.write(("t", 1), {"title": "y", "done": False})
    b.write(("t", 1), {"title": "x", "done": True})
    for d, u, _ in ua:
        b.apply_update(d, u)
    for d, u, _ in ub[1:]:
        a.apply_update(d, u)
    assert a.read(("t", 1)) == b.read(("t", 1)) == {"title": "y", "done": True}


def test_close_releases_observers() -> None:
    r = Replica()
    r.write(("d", 1), 1)
    r.close()
    assert r.doc_ids() == []


def test_reserved_float_tag_mapping_is_rejected() -> None:
    from crdtsync.values import FLOAT_TAG

    r = Replica()
    with pytest.raises(InvalidValueError):
        r.write(("d", 1), {FLOAT_TAG: 5})
    r.write(("d", 1), {FLOAT_TAG: 5, "other": 1})  # only the one-key shape is reserved
    assert r.read(("d", 1)) == {FLOAT_TAG: 5, "other": 1}


def test_long_arrays_edit_in_the_middle_and_sync() -> None:
    a, updates = make_recording()
    b = Replica()
    items = [{"id": i, "t": str(i)} for i in range(2000)]
    a.write(("l", 1), items)
    items2 = [*items[:1000], {"id": -1, "t": "new"}, *items[1000:1500], *items[1600:]]
    a.write(("l", 1), items2)
    for d, u, _ in updates:
        b.apply_update(d, u)
    assert b.read(("l", 1)) == items2
    assert len(updates[1][1]) < 400  # an insert and a range delete, not the whole list


def test_concurrent_list_inserts_keep_both() -> None:
    a, ua = make_recording()
    b, ub = make_recording()
    a.write(("l", 1), ["x", "y"])
    for d, u, _ in ua:
        b.apply_update(d, u)
    ua.clear()
    a.write(("l", 1), ["x", "a", "y"])
    b.write(("l", 1), ["x", "b", "y"])
    for d, u, _ in ua:
        b.apply_update(d, u)
    for d, u, _ in ub[1:]:
        a.apply_update(d, u)
    assert a.read(("l", 1)) == b.read(("l", 1))
    assert sorted(a.read(("l", 1))) == ["a", "b", "x", "y"]


def test_direct_document_edits_inside_a_batch_still_reach_watchers() -> None:
    """Writes through the Replica record their own paths; a direct edit of the same document in
    the same transaction must not be missed."""
    from pycrdt import Map

    r = Replica()
    seen: dict[str, int] = {"a": 0, "b": 0}
    r.watch("d", ("a",), lambda o: seen.__setitem__("a", seen["a"] + 1))
    r.watch("d", ("b",), lambda o: seen.__setitem__("b", seen["b"] + 1))
    with r.batch():
        r.write_path("d", ("a",), 1)
        r.doc("d").get("root", type=Map)["b"] = 2  # a direct edit, not through the Replica
    assert seen == {"a": 1, "b": 1}
    with r.batch():
        r.write_path("d", ("a",), 2)
    assert seen == {"a": 2, "b": 1}
    with r.edit("d") as root:
        root["b"] = 3
    assert seen == {"a": 2, "b": 2}


def test_write_many_reports_only_changed_slots() -> None:
    r = Replica()
    seen: list[str] = []
    for k in ("x", "y", "z"):
        r.watch("e", (k,), lambda o, k=k: seen.append(k))
    assert r.write_many("e", {"x": {"n": 1}, "y": {"n": 2}, "z": {"n": 3}}) == 3
    assert sorted(seen) == ["x", "y", "z"]
    seen.clear()
    assert r.write_many("e", {"x": {"n": 1}, "y": {"n": 20}, "z": {"n": 3}}) == 1
    assert seen == ["y"]


def test_a_failing_listener_does_not_lose_the_update_for_the_others() -> None:
    r, updates = make_recording()
    seen: list[Origin] = []
    r.watch("todos", ("1",), lambda o: 1 / 0)
    r.watch("todos", ("1",), seen.append)
    with pytest.raises(ZeroDivisionError):
        r.write(("todos", 1), {"t": "a"})
    assert r.read(("todos", 1)) == {"t": "a"}
    assert [d for d, _, _ in updates] == ["todos"]  # sync and persistence still got it
    assert seen == [LOCAL]  # and so did the other watcher
    peer = Replica()
    for d, u, _ in updates:
        peer.apply_update(d, u)
    assert peer.read(("todos", 1)) == {"t": "a"}


def test_a_no_op_write_many_leaves_no_stale_bookkeeping() -> None:
    from pycrdt import Map

    r = Replica()
    paths: list[list[tuple[object, ...]]] = []
    r.on_change(lambda d, p, o: paths.append(p))
    r.write_many("e", {"a": 1})
    r.write_many("e", {"a": 1})  # nothing changes
    doc = r.doc("e")
    doc.get("root", type=Map)["b"] = 2  # a direct edit (reported at the Replica's next flush)
    r.write_many("e", {"c": 3})
    assert paths == [[("a",)], [("b",), ("c",)]]  # one flush reports both


class PanicException(BaseException):
    """Stands in for pyo3's PanicException (what pycrdt raises when yrs panics)."""


def test_a_pycrdt_panic_while_applying_becomes_a_typed_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from pycrdt import Doc

    from crdtsync.errors import FrameError

    r = Replica()
    r.write(("d", 1), "before")

    def panic(self: object, update: bytes) -> None:
        raise PanicException("called Option::unwrap() on a None value")

    monkeypatch.setattr(Doc, "apply_update", panic)
    with pytest.raises(FrameError):
        r.apply_update("d", b"\x01\x02")
    monkeypatch.undo()
    assert r.read(("d", 1)) == "before"
    r.write(("d", 1), "after")  # the replica still works
    assert r.read(("d", 1)) == "after"


def test_a_pycrdt_panic_while_committing_an_update_becomes_a_typed_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from crdtsync.errors import FrameError

    a, b = Replica(), Replica()
    a.write(("d", 1), "from a")
    b.write(("d", 2), "b's own")

    def panic(self: Replica, doc_id: str, event: object) -> None:  # runs inside yrs's commit
        raise PanicException("called Option::unwrap() on a None value")

    monkeypatch.setattr(Replica, "_on_txn", panic)
    with pytest.raises(FrameError):
        b.apply_update("d", a.get_update("d"))
    monkeypatch.undo()
    b.write(("d", 3), "after")  # the replica still works
    assert b.read(("d", 3)) == "after"
