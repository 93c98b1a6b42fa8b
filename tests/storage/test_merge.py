import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pycrdt import Doc, Map, Text

from crdtsync.errors import CorruptStoreError
from crdtsync.storage.merge import merge


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
