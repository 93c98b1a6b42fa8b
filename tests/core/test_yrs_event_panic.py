"""Regression: a map event whose ``keys`` make yrs 0.28 panic must not fail the commit.

Smallest trigger, built with Replica writes (:func:`_built_pair`): client A (the larger client
id) writes ``x``, then writes ``b`` and deletes it, so its ``b`` entry is GC'd (content
Deleted). A receiver gets only A's second and third writes (it missed ``x``: A's update is
pending, its state vector for A stays empty). Client B (smaller id) writes ``b``. Applying B's
update makes yrs integrate A's pending entry too (A's larger id puts it to the right of B's,
so it is the map's entry for ``b``), and reading the event's ``keys`` panics. Each condition
is needed: with A's ``x`` received, with A's ``b`` not deleted, or with B's id larger, it
reads fine (checked by ``test_each_condition_is_needed``).

yrs 0.28 (pycrdt 0.14) panics in ``event_keys`` (types/mod.rs:806, ``Option::unwrap()`` on
``None``) when a map event's ``keys`` are read after the two updates below. The convergence
property (tests/properties/test_convergence.py) found it through SimNetwork; this is the same
situation: :data:`PENDING_A` / :data:`FROM_B` are the two updates a random Replica fuzzer
produced (replayed into a fresh Replica the panic happens every time). What those bytes are
(decoded by hand; client A = 1596054000, client B = 139243784):

- ``PENDING_A``: what a peer had of client A after a partition: A:0..3 missing (a Skip),
  A:4 = ``root["c"]`` and A:5 = ``root["b"]``, both deleted and garbage-collected (content
  Deleted), A:6..7 GC; delete set A:4..7. A receiver cannot integrate any of it (the
  A:0..3 gap), so it stays pending: the state vector after it is empty for A.
- ``FROM_B``: B:0 = ``root["b"]`` already deleted and GC'd (content Deleted), B:1..5 GC,
  B:6 = ``root["a"]`` a new Array holding B:7 = ``"s"``; delete set B:0..5 and A:3..7.

Applying ``FROM_B`` while ``PENDING_A`` is pending fires one root-map event (keys ``a`` and
``b``), and reading its ``keys`` panics. Our reading of yrs' ``event_keys`` (not verified inside
yrs): it takes the entry at ``b`` as inserted in this transaction (its clock is not below the
transaction's before-state) with no delete recorded for it, and unwraps the last value of its
GC'd (Deleted) content, which has none. The same update without A's pending structs, or the
two in the other order, read fine (``test_fixture_still_makes_yrs_panic`` checks all three).
The guard in ``Replica._on_deep`` (commit f5867ea) reports the map as changed as a whole
instead; without it ``Replica.apply_update`` raises PanicException and the tests below fail.
"""

from __future__ import annotations

from typing import Any

import pytest
from pycrdt import Doc, Map

from crdtsync.origins import REMOTE, Origin
from crdtsync.replica import ROOT_NAME, Replica

PENDING_A = bytes.fromhex(
    "0104f0b387f905000a04210104726f6f74016301210104726f6f74016201000201f0b387f905010404"
)
FROM_B = bytes.fromhex(
    "010488e2b24200210104726f6f740162010005270104726f6f74016100080088e2b24206017701730288e2"
    "b242010006f0b387f905010305"
)


def _raw_keys_panics(updates: list[bytes]) -> bool:
    """Apply ``updates`` to a bare Doc whose raw deep observer reads every event's path and
    keys, as Replica does; True when reading raised pyo3's PanicException."""
    doc: Doc[Any] = Doc()
    root: Map[Any] = doc.get(ROOT_NAME, type=Map[Any])
    panicked: list[BaseException] = []

    def on_deep(events: list[Any]) -> None:
        for ev in events:
            try:
                tuple(ev.path)
                if type(ev).__name__ == "MapEvent":
                    ev.keys  # noqa: B018 - reading it is the point
            except BaseException as exc:  # pyo3's PanicException derives from BaseException
                if type(exc).__name__ != "PanicException":
                    raise
                panicked.append(exc)

    # The raw observer Replica uses; it lives only as long as the subscription object is kept.
    sub = root.integrated.observe_deep(on_deep)
    try:
        for u in updates:
            doc.apply_update(u)
    finally:
        sub.drop()
    return bool(panicked)


A_ID, B_ID = 2000, 1000  # A's entry must sort to the right of B's: A's client id is larger


def _built_pair(
    *, a_id: int = A_ID, b_id: int = B_ID, a_deletes: bool = True, gap: bool = True
) -> tuple[bytes, bytes]:
    """(what a receiver got of client A, B's update), made by Replica writes."""
    a, b = Replica(client_id=a_id), Replica(client_id=b_id)
    a.write_path("d", ("x",), 1)
    missed = a.state_vector("d")  # the receiver never gets this first write of A
    a.write_path("d", ("b",), 1)
    if a_deletes:
        a.delete_path("d", ("b",))  # A's entry is GC'd: its content becomes Deleted
    pending_a = a.get_update("d", missed if gap else None)
    b.write_path("d", ("b",), 2)
    return pending_a, b.get_update("d")


# name -> (first update, second update, the receiver's whole root afterwards)
PAIRS = {
    "built": (*_built_pair(), {}),
    "found": (PENDING_A, FROM_B, {"a": ["s"]}),
}


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_fixture_still_makes_yrs_panic(name: str) -> None:
    # These are only regression tests while yrs really panics on them. If this fails after a
    # pycrdt upgrade, yrs was fixed: the guard in Replica._on_deep can be reconsidered.
    first, second, _ = PAIRS[name]
    assert _raw_keys_panics([first, second])
    assert not _raw_keys_panics([second])
    assert not _raw_keys_panics([second, first])


@pytest.mark.parametrize(
    "kwargs", [{"gap": False}, {"a_deletes": False}, {"a_id": B_ID, "b_id": A_ID}]
)
def test_each_condition_is_needed(kwargs: dict[str, Any]) -> None:
    assert not _raw_keys_panics(list(_built_pair(**kwargs)))


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_replica_reports_the_change_and_converges(name: str) -> None:
    first, second, expected = PAIRS[name]
    r = Replica()
    r.apply_update("d", first)
    assert r.read_path("d", ()) == {}

    watched: list[Origin] = []
    changes: list[tuple[str, list[tuple[Any, ...]], Origin]] = []
    r.watch("d", ("b",), watched.append)
    r.on_change(lambda doc_id, paths, origin: changes.append((doc_id, paths, origin)))

    r.apply_update("d", second)  # raised PanicException before the guard

    assert watched == [REMOTE]
    assert len(changes) == 1
    doc_id, paths, origin = changes[0]
    assert (doc_id, origin) == ("d", REMOTE)
    # Reported coarsely (the whole root) or exactly: either way it covers "b".
    assert any(p[:1] in ((), ("b",)) for p in paths)
    assert r.read_path("d", ()) == expected

    # The other order never panics; both replicas end in the same state.
    s = Replica()
    s.apply_update("d", second)
    s.apply_update("d", first)
    assert s.read_path("d", ()) == expected
    for x, y in ((r, s), (s, r)):
        y.apply_update("d", x.get_update("d", y.state_vector("d")))
        assert y.read_path("d", ()) == expected


@pytest.mark.parametrize("then_write", [False, True])
@pytest.mark.parametrize("name", sorted(PAIRS))
def test_replica_keeps_working_after_the_guarded_event(name: str, then_write: bool) -> None:
    first, second, _ = PAIRS[name]
    r = Replica()
    r.apply_update("d", first)
    r.apply_update("d", second)
    seen: list[Origin] = []
    r.watch("d", ("b",), seen.append)
    if then_write:
        assert r.write_path("d", ("b",), 7)
        assert seen and r.read_path("d", ("b",)) == 7
    peer = Replica()
    peer.apply_update("d", r.get_update("d"))
    assert peer.read_path("d", ()) == r.read_path("d", ())
