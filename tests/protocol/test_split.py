"""split_update: parts of at most ``limit`` bytes that, applied in order, give the same document."""

from __future__ import annotations

from typing import Any

import pycrdt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crdtsync import Replica
from crdtsync.errors import FrameError, MessageTooLargeError
from crdtsync.protocol.split import split_update

scalar = st.one_of(st.integers(-(2**40), 2**40), st.text(max_size=12), st.booleans(), st.none(),
                   st.floats(allow_nan=False, allow_infinity=False))
op = st.one_of(
    st.tuples(st.just("list"), st.sampled_from("abc"), st.lists(scalar, max_size=300)),
    st.tuples(st.just("map"), st.sampled_from("abc"), st.dictionaries(st.text(max_size=5), scalar, max_size=6)),
    st.tuples(st.just("delete"), st.sampled_from("abc"), st.none()),
    st.tuples(st.just("text"), st.sampled_from("xy"), st.text(max_size=40)),
    st.tuples(st.just("peer"), st.sampled_from("abc"), st.lists(scalar, max_size=80)),
)


def apply(r: Replica, peer: Replica, step: tuple[str, str, Any]) -> None:
    kind, key, value = step
    if kind == "list" or kind == "map":
        r.write(("d", key), value)
    elif kind == "delete":
        r.delete(("d", key))
    elif kind == "text":
        with r.edit("d") as root:
            if key not in root:
                root[key] = pycrdt.Text()
            root[key] += value
    else:  # a second author, merged in: the update then has two clients
        peer.apply_update("d", r.get_update("d", peer.state_vector("d")))
        peer.write(("d", key), value)
        r.apply_update("d", peer.get_update("d", r.state_vector("d")))


def content(r: Replica) -> Any:
    root = r.raw("d", ())
    return {k: str(v) if isinstance(v, pycrdt.Text) else r.read_path("d", (k,)) for k, v in root.items()}


@settings(max_examples=150, deadline=None)
@given(steps=st.lists(op, min_size=1, max_size=12), cut=st.integers(0, 12), frac=st.floats(0.02, 1.0))
def test_parts_fit_and_applied_in_order_give_the_same_document(steps: list[Any], cut: int, frac: float) -> None:
    r, peer = Replica(client_id=1), Replica(client_id=2)
    behind = Replica(client_id=3)  # a peer that has the first ``cut`` steps only
    for i, step in enumerate(steps):
        if i == cut:
            behind.apply_update("d", r.get_update("d"))
        apply(r, peer, step)
    for target, sv in ((Replica(client_id=4), None), (behind, behind.state_vector("d") if cut < len(steps) else None)):
        update = r.get_update("d", sv)
        limit = max(64, int(len(update) * frac))  # mostly smaller than the update: it must be cut
        try:
            parts = split_update(update, limit)
        except MessageTooLargeError:
            continue  # one string or value longer than the limit: refused, never cut wrong
        assert all(len(p) <= limit for p in parts) or parts == [update]
        for p in parts:
            target.apply_update("d", p)
        assert content(target) == content(r)
        assert target.state_vector("d") == r.state_vector("d")


def test_a_long_array_of_ids_is_cut_inside_its_one_block() -> None:
    r = Replica()
    ids = [str(i) for i in range(10_000)]
    r.write(("d", "ids"), ids)
    update = r.get_update("d")
    parts = split_update(update, 4096)
    assert len(parts) > 10 and all(len(p) <= 4096 for p in parts)
    fresh = Replica()
    for p in parts:
        fresh.apply_update("d", p)
    assert fresh.read(("d", "ids")) == ids


def test_small_updates_pass_through_unchanged() -> None:
    r = Replica()
    r.write(("d", "k"), [1, 2, 3])
    update = r.get_update("d")
    assert split_update(update, len(update)) == [update]


def test_one_value_larger_than_the_limit_is_a_typed_error() -> None:
    r = Replica()
    r.write(("d", "k"), ["x" * 5000, "y"])
    with pytest.raises(MessageTooLargeError):
        split_update(r.get_update("d"), 1000)


def test_garbage_is_a_frame_error() -> None:
    with pytest.raises(FrameError):
        split_update(b"\x05\x01\x02" + b"\xff" * 400, 100)
