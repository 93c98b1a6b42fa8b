import random
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pycrdt import Doc, Map, Text

from crdtsync.errors import CorruptStoreError
from crdtsync.storage.merge import merge, merge_batch


def _state(update: bytes) -> tuple[dict[str, object], str]:
    d: Doc = Doc()
    d.apply_update(update)
    return d.get("m", type=Map).to_py(), str(d.get("t", type=Text))


@settings(max_examples=60, deadline=None)
@given(
    edits=st.lists(
        st.tuples(st.integers(0, 2), st.integers(0, 9), st.text(max_size=5)), min_size=1, max_size=40
    ),
    writers=st.integers(1, 3),
    seed=st.integers(0, 2**32),
)
def test_merge_equals_source_in_any_order(edits: list[tuple[int, int, str]], writers: int, seed: int) -> None:
    docs: list[Doc] = [Doc(client_id=i + 1) for i in range(writers)]
    ups: list[bytes] = []
    for d in docs:
        d.observe(lambda ev: ups.append(bytes(ev.update)))
    for who, key, text in edits:
        d = docs[who % writers]
        if key < 5:
            d.get("m", type=Map)[f"k{key}"] = text
        else:
            d.get("t", type=Text).insert(0, text.encode("ascii", "ignore").decode() or "x")
    reference: Doc = Doc()
    for u in ups:
        reference.apply_update(u)
    shuffled = list(ups)
    random.Random(seed).shuffle(shuffled)
    assert _state(merge(shuffled)) == _state(reference.get_update())
    assert _state(merge(ups)) == _state(reference.get_update())


def test_merge_rejects_garbage() -> None:
    with pytest.raises(CorruptStoreError):
        merge([b"\x00\x00", b"\xff\xfe"], doc_id="x")


def test_merge_empty() -> None:
    assert _state(merge([])) == ({}, "")


def _delete_only_updates() -> tuple[bytes, list[bytes], str]:
    """A history ("abc") and two later delete-only updates from two peers, the deleted items
    being in the history, not in the later updates."""
    d: Doc = Doc(client_id=1)
    t = d.get("t", type=Text)
    ups: list[bytes] = []
    d.observe(lambda ev: ups.append(bytes(ev.update)))
    t += "abc"
    history = ups[0]
    del t[0:1]
    e: Doc = Doc(client_id=2)
    e.apply_update(history)
    te = e.get("t", type=Text)
    more: list[bytes] = []
    e.observe(lambda ev: more.append(bytes(ev.update)))
    del te[2:3]
    return history, [ups[1], more[0]], "b"


@pytest.mark.parametrize("merger", [merge, merge_batch])
def test_merging_deletions_of_items_outside_the_batch_keeps_them(merger: Callable[..., bytes]) -> None:
    history, batch, expected = _delete_only_updates()
    merged = merger(batch)
    assert merged != b"\x00\x00"
    r: Doc = Doc()
    r.apply_update(history)
    r.apply_update(merged)
    assert str(r.get("t", type=Text)) == expected


def test_merge_batch_of_many_updates_in_chunks() -> None:
    d: Doc = Doc(client_id=7)
    t = d.get("t", type=Text)
    ups: list[bytes] = []
    d.observe(lambda ev: ups.append(bytes(ev.update)))
    for i in range(1000):
        t.insert(0, str(i % 10))
    for _ in range(300):
        del t[0:1]
    merged = merge_batch(ups, chunk=16)
    assert _state(merged)[1] == str(t)
    assert merge_batch([]) == b"\x00\x00"
    with pytest.raises(CorruptStoreError):
        merge_batch([b"\x00\x00", b"\xff\xfe"], doc_id="x")
