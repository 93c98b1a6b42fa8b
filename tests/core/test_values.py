"""The int/float codec, strict equality and structural sharing."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crdtsync.errors import InvalidValueError
from crdtsync.values import check_value, replace_equal_deep, strict_equal

leaves = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**53), 2**53),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=8),
)
json_values = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=20,
)


def test_strict_equal_distinguishes_number_types() -> None:
    assert not strict_equal(1, 1.0)
    assert not strict_equal(1, True)
    assert not strict_equal({"a": 1}, {"a": 1.0})
    assert strict_equal([1, {"b": 2.5}], [1, {"b": 2.5}])


@given(json_values)
def test_replace_equal_deep_returns_prev_when_equal(v: Any) -> None:
    import copy

    clone = copy.deepcopy(v)
    assert replace_equal_deep(v, clone) is v


def test_replace_equal_deep_shares_unchanged_branches() -> None:
    prev = {"a": {"x": [1, 2]}, "b": {"y": 1}}
    new = {"a": {"x": [1, 2]}, "b": {"y": 2}}
    out = replace_equal_deep(prev, new)
    assert out == new
    assert out["a"] is prev["a"]
    assert out["b"] is not prev["b"]


@pytest.mark.parametrize("bad", [float("inf"), float("nan"), {1: "a"}, object(), {"a": {1, 2}}, b"bytes"])
def test_unstorable_values_are_rejected(bad: Any) -> None:
    with pytest.raises(InvalidValueError):
        check_value(bad)
