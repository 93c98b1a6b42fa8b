"""Key validation, stable hashing and the prefix-matching laws."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crdtsync.errors import InvalidKeyError
from crdtsync.keys import hash_key, normalize_key, partial_match_key

scalars = st.one_of(st.none(), st.booleans(), st.integers(-1000, 1000), st.text(max_size=5))
mappings = st.dictionaries(st.text(max_size=4), scalars, max_size=4)
parts = st.one_of(st.text(max_size=6), st.integers(-10**6, 10**6), mappings)
keys = st.lists(parts, min_size=1, max_size=5).map(tuple)


@given(keys)
def test_a_key_matches_itself_and_every_prefix(key: tuple[Any, ...]) -> None:
    for n in range(1, len(key) + 1):
        assert partial_match_key(key, key[:n])


@given(keys, keys)
def test_longer_filter_never_matches(key: tuple[Any, ...], extra: tuple[Any, ...]) -> None:
    assert not partial_match_key(key, key + extra)


@given(keys, keys, keys)
def test_matching_is_transitive(a: tuple[Any, ...], b: tuple[Any, ...], c: tuple[Any, ...]) -> None:
    if partial_match_key(a, b) and partial_match_key(b, c):
        assert partial_match_key(a, c)


@given(mappings, mappings)
def test_mapping_part_matches_by_subset(m: dict[str, Any], extra: dict[str, Any]) -> None:
    bigger = {**extra, **m}
    assert partial_match_key(("x", bigger), ("x", m))
    if any(k not in m for k in bigger):
        # The larger mapping as a filter does not match the smaller one.
        assert not partial_match_key(("x", m), ("x", bigger))


def test_int_and_str_parts_differ() -> None:
    assert not partial_match_key(("todos", 5), ("todos", "5"))
    assert hash_key(("todos", 5)) != hash_key(("todos", "5"))
    assert not partial_match_key(("t", {"a": 1}), ("t", {"a": True}))


@given(st.dictionaries(st.text(max_size=4), scalars, min_size=2, max_size=6))
def test_hash_ignores_mapping_order(m: dict[str, Any]) -> None:
    reordered = dict(reversed(list(m.items())))
    assert hash_key(("k", m)) == hash_key(("k", reordered))


def test_hash_is_stable_across_processes() -> None:
    key = ("todos", {"z": 1, "a": [1, "x"], "m": {"b": 2, "a": 1}}, 7)
    code = (
        "import json,sys; from crdtsync.keys import hash_key; "
        "print(hash_key(json.loads(sys.argv[1])))"
    )
    out = subprocess.run([sys.executable, "-c", code, json.dumps(list(key))], capture_output=True, text=True,
                         check=True, env={"PYTHONHASHSEED": "123"})
    assert out.stdout.strip() == hash_key(key)


@pytest.mark.parametrize("bad", [(), "todos", [object()], (True,), ({1: 2},), ("x", float("nan")), (3.5,)])
def test_bad_keys_are_rejected_with_a_typed_error(bad: Any) -> None:
    with pytest.raises(InvalidKeyError):
        normalize_key(bad)


def test_lists_become_tuples() -> None:
    assert normalize_key(["a", 1]) == ("a", 1)
