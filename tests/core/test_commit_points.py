"""Commit points (crdtsync/pycrdt_internals.py) and the per-write merged update (Replica._merge_runs):
long array writes commit every 48 items only when the replica's transaction is the only lease;
listeners still see one update per logical write, peers converge, nothing is half-written."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pycrdt import Map

from crdtsync.errors import InvalidValueError
from crdtsync.origins import LOCAL, remote_origin
from crdtsync.pycrdt_internals import can_commit, commit_point
from crdtsync.replica import Replica
from crdtsync.values import strict_equal


def updates_of(r: Replica) -> list[tuple[str, bytes, Any]]:
    out: list[tuple[str, bytes, Any]] = []
    r.on_update(lambda d, u, o: out.append((d, u, o)))
    return out


def converged(r: Replica, doc_id: str, updates: list[tuple[str, bytes, Any]] | None = None) -> Replica:
    """A fresh replica fed either the listener updates or the full state of ``doc_id``."""
    peer = Replica()
    if updates is None:
        peer.apply_update(doc_id, r.get_update(doc_id))
    else:
        for d, u, _ in updates:
            if d == doc_id:
                peer.apply_update(d, u)
    return peer


@pytest.mark.parametrize("n", [0, 1, 48, 49, 97, 500])
def test_long_list_write_is_one_update_and_peers_converge(n: int) -> None:
    r = Replica()
    ups = updates_of(r)
    value = [f"s{i}" if i % 3 else {"i": i, "f": 1.5} for i in range(n)]
    origin = remote_origin("x")
    r.write(("k",), value, origin=origin)
    doc_id = r.route(("k",)).doc_id
    assert len(ups) == 1 and ups[0][2] == origin
    peer = converged(r, doc_id, ups)
    assert strict_equal(peer.read(("k",)), value)
    assert peer.get_update(doc_id) == r.get_update(doc_id) or strict_equal(
        converged(peer, doc_id).read(("k",)), value)


def test_user_transaction_around_a_write_is_not_split() -> None:
    r = Replica()
    doc_id = r.route(("k",)).doc_id
    doc = r.doc(doc_id)
    raw: list[bytes] = []
    doc.observe(lambda ev: raw.append(bytes(ev.update)))
    with doc.transaction(origin=LOCAL):  # the replica's write is then a second lease
        r.write(("k",), list(range(200)))
        assert not raw  # nothing committed inside the user's transaction
    assert len(raw) == 1
    assert r.read(("k",)) == list(range(200))


def test_commit_point_keeps_the_origin_and_the_outer_transaction() -> None:
    r = Replica()
    doc_id = r.route(("k",)).doc_id
    doc = r.doc(doc_id)
    seen: list[bytes] = []
    doc.observe(lambda ev: seen.append(bytes(ev.update)))
    root = doc.get("root", type=Map)
    with doc.transaction(origin="mine") as t:
        assert can_commit(doc)
        root["a"] = 1
        assert commit_point(doc)
        assert len(seen) == 1
        assert doc._txn is t and t.origin == "mine"
        root["b"] = 2
    assert len(seen) == 2
    assert r.read_path(doc_id, ("b",)) == 2
    assert doc._txn is None


def test_commit_points_inside_a_batch_across_documents_give_one_update_per_document() -> None:
    r = Replica()
    r.router.add(("a", "{x}"), doc="doc-a")
    r.router.add(("b", "{x}"), doc="doc-b")
    ups = updates_of(r)
    with r.batch(origin=LOCAL):
        r.write(("a", 1), list(range(100)))
        r.write(("b", 1), list(range(100)))
        r.write(("a", 2), [str(i) for i in range(100)])
    by_doc: dict[str, int] = {}
    for d, _, _ in ups:
        by_doc[d] = by_doc.get(d, 0) + 1
    assert by_doc == {"doc-a": 1, "doc-b": 1}
    for d in ("doc-a", "doc-b"):
        peer = converged(r, d, ups)
        assert peer.get_update(d) and strict_equal(peer.read_path(d, ()), r.read_path(d, ()))


def test_direct_edit_after_a_long_write_inside_edit_in_a_batch_is_reported() -> None:
    r = Replica()
    doc_id = r.route(("k",)).doc_id
    r.write(("k",), [])
    fired: list[Any] = []
    r.watch(doc_id, ("x",), fired.append)
    with r.batch(), r.edit(doc_id) as root:
        r.write(("k",), list(range(100)))
        root["x"] = "direct"
    assert len(fired) == 1


def test_direct_edit_after_a_short_write_inside_edit_in_a_batch_is_reported() -> None:
    r = Replica()
    doc_id = r.route(("k",)).doc_id
    r.write(("k",), [])
    fired: list[Any] = []
    r.watch(doc_id, ("x",), fired.append)
    with r.batch(), r.edit(doc_id) as root:
        r.write(("k",), list(range(10)))
        root["x"] = "direct"
    assert len(fired) == 1


def test_listener_writing_during_the_flush_gets_its_own_update() -> None:
    r = Replica()
    ups = updates_of(r)
    doc_id = r.route(("k",)).doc_id

    def react(d: str, update: bytes, origin: Any) -> None:
        if r.read(("echo",)) is not None and len(ups) == 1:
            r.write(("echo",), list(range(60)), origin=remote_origin("listener"))

    r.on_update(react)
    r.write(("k",), list(range(100)))
    assert [o for _, _, o in ups] == [LOCAL, remote_origin("listener")]
    assert converged(r, doc_id, ups).read(("k",)) == list(range(100))
    assert converged(r, r.route(("echo",)).doc_id, ups).read(("echo",)) == list(range(60))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), object(), {1: "x"}, {"__crdtsync_float__": 1.0}])
def test_invalid_item_late_in_a_long_list_leaves_nothing_written(bad: Any) -> None:
    r = Replica()
    ups = updates_of(r)
    with pytest.raises(InvalidValueError):
        r.write(("k",), [*range(100), bad])
    assert r.read(("k",)) is not None and not ups
    with pytest.raises(InvalidValueError):
        r.write(("k",), {"a": [*range(100), [bad]]})
    assert not ups


def test_int_beyond_64_bits_late_in_a_long_list_is_a_typed_error_and_writes_nothing() -> None:
    r = Replica()
    ups = updates_of(r)
    try:
        r.write(("k",), [*range(60), 2**70])
    except InvalidValueError:
        pass
    except BaseException:  # the PanicException must not escape
        pytest.fail("a pycrdt panic escaped")
    assert not ups


def test_edit_and_apply_update_still_report_one_update() -> None:
    a, b = Replica(), Replica()
    doc_id = a.route(("k",)).doc_id
    a.write(("k",), list(range(300)))
    ups = updates_of(b)
    b.apply_update(doc_id, a.get_update(doc_id))
    assert len(ups) == 1 and b.read(("k",)) == list(range(300))
    with b.edit(doc_id) as root:
        root["z"] = 1
    assert len(ups) == 2


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.one_of(st.integers(-5, 5), st.text(max_size=3), st.floats(-3, 3)), max_size=130),
                min_size=1, max_size=4))
def test_sequence_of_long_writes_converges_via_listener_updates(writes: list[list[Any]]) -> None:
    r = Replica()
    ups = updates_of(r)
    doc_id = r.route(("k",)).doc_id
    for w in writes:
        r.write(("k",), w)
    peer = converged(r, doc_id, ups)
    assert strict_equal(peer.read(("k",)), writes[-1])
    assert strict_equal(r.read(("k",)), writes[-1])
