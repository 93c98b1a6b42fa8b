"""Ported from TanStack query-core ``utils.test.tsx`` (behaviour, not code)."""

from __future__ import annotations

import pytest

from crdtsync.errors import InvalidKeyError
from crdtsync.keys import hash_key, normalize_key, partial_match_key
from crdtsync.values import replace_equal_deep


def test_partial_match_key_list_inside_mapping_matches_by_subset() -> None:
    """utils partialMatchKey: 'should return `true` if a includes b' with arrays inside objects
    (arrays compare like objects: each index of b must match)."""
    key = ("todos", {"ids": [1, 2, 3], "done": True})
    assert partial_match_key(key, ("todos", {"ids": [1, 2]}))
    assert partial_match_key(key, ("todos", {"ids": []}))
    assert not partial_match_key(key, ("todos", {"ids": [2]}))
    assert not partial_match_key(key, ("todos", {"ids": [1, 2, 3, 4]}))


def test_partial_match_key_prefix_and_exact() -> None:
    """utils > partialMatchKey > 'should return `true` if a includes b' / 'should return `false`
    if a does not include b'."""
    assert partial_match_key(("a", "b", 1), ("a",))
    assert partial_match_key(("a", "b", 1), ("a", "b", 1))
    assert not partial_match_key(("a",), ("a", "b"))
    assert not partial_match_key(("a", "b"), ("b",))


def test_partial_match_key_mapping_subset() -> None:
    """utils > partialMatchKey > objects match by subset, recursively."""
    key = ("a", {"b": {"c": 1, "d": 2}, "e": 3})
    assert partial_match_key(key, ("a", {"b": {"c": 1}}))
    assert partial_match_key(key, ("a", {}))
    assert not partial_match_key(key, ("a", {"b": {"c": 2}}))
    assert not partial_match_key(key, ("a", {"f": 1}))


def test_partial_match_key_types_strict() -> None:
    """utils > partialMatchKey > values of different types do not match (1 is not "1", True is
    not 1)."""
    assert not partial_match_key(("a", 1), ("a", "1"))
    assert not partial_match_key(("a", {"x": True}), ("a", {"x": 1}))


def test_hash_key_sorts_mapping_keys() -> None:
    """utils > hashKey > 'should hash object keys in sorted order'."""
    assert hash_key(("a", {"b": 1, "c": 2})) == hash_key(("a", {"c": 2, "b": 1}))
    assert hash_key(("a", {"b": {"y": 1, "x": 2}})) == hash_key(("a", {"b": {"x": 2, "y": 1}}))


def test_hash_key_distinguishes_types_and_order() -> None:
    """utils > hashKey > different keys hash differently (array order matters)."""
    assert hash_key(("a", 1)) != hash_key(("a", "1"))
    assert hash_key(("a", "b")) != hash_key(("b", "a"))


def test_replace_equal_deep_keeps_equal_objects() -> None:
    """utils > replaceEqualDeep > 'should return the previous value when the next value is an
    equal object'."""
    prev = {"a": [1, {"b": 2}], "c": "x"}
    nxt = {"a": [1, {"b": 2}], "c": "x"}
    assert replace_equal_deep(prev, nxt) is prev


def test_replace_equal_deep_shares_unchanged_parts() -> None:
    """utils > replaceEqualDeep > 'should return the next value but share unchanged parts'."""
    prev = {"todo": {"id": 1}, "other": {"id": 2}}
    nxt = {"todo": {"id": 1}, "other": {"id": 3}}
    out = replace_equal_deep(prev, nxt)
    assert out is not prev and out == nxt
    assert out["todo"] is prev["todo"] and out["other"] is not prev["other"]


def test_replace_equal_deep_lists() -> None:
    """utils > replaceEqualDeep > arrays: equal arrays are kept, changed ones share items."""
    prev = [{"a": 1}, {"b": 2}]
    assert replace_equal_deep(prev, [{"a": 1}, {"b": 2}]) is prev
    out = replace_equal_deep(prev, [{"a": 1}, {"b": 3}, {"c": 4}])
    assert out[0] is prev[0] and out[1] == {"b": 3} and len(out) == 3


def test_replace_equal_deep_primitives_and_types() -> None:
    """utils > replaceEqualDeep > primitives return the next value; a type change is a change."""
    assert replace_equal_deep(1, 2) == 2
    assert replace_equal_deep("a", "a") == "a"
    out = replace_equal_deep({"a": 1}, [1])
    assert out == [1]


def test_normalize_key_rejects_bad_keys() -> None:
    """utils > key validation (Python keys are tuples of str, int and mappings)."""
    for bad in ((), "todos", ("a", 1.5), ("a", True), ("a", object())):
        with pytest.raises(InvalidKeyError):
            normalize_key(bad)  # type: ignore[arg-type]
    assert normalize_key(["a", 1]) == ("a", 1)


def test_match_query_exact_uses_hash() -> None:
    """utils > matchQuery > 'exact' compares hashes (mapping order does not matter)."""
    assert hash_key(("a", {"x": 1, "y": 2})) == hash_key(["a", {"y": 2, "x": 1}])
