"""Ported from TanStack query-core ``utils.test.tsx`` (behaviour, not code)."""

from __future__ import annotations

from crdtsync.keys import partial_match_key


def test_partial_match_key_list_inside_mapping_matches_by_subset() -> None:
    """utils partialMatchKey: 'should return `true` if a includes b' with arrays inside objects
    (arrays compare like objects: each index of b must match)."""
    key = ("todos", {"ids": [1, 2, 3], "done": True})
    assert partial_match_key(key, ("todos", {"ids": [1, 2]}))
    assert partial_match_key(key, ("todos", {"ids": []}))
    assert not partial_match_key(key, ("todos", {"ids": [2]}))
    assert not partial_match_key(key, ("todos", {"ids": [1, 2, 3, 4]}))
