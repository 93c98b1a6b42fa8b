"""encode_checked (check_value + encode_plain in one pass): same verdict as check_value, same
encoding as encode_plain, and the identical object back exactly when it reads back as written."""

from __future__ import annotations

import enum
from collections import OrderedDict
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crdtsync.errors import InvalidValueError
from crdtsync.replica import Replica
from crdtsync.values import FLOAT_TAG, check_value, encode_checked, encode_plain, strict_equal


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Color(str, enum.Enum):  # noqa: UP042 (the mixin form is the case that breaks)
    RED = "red"


def exact(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(exact(v, b[k]) for k, v in a.items())
    if isinstance(a, list):
        return len(a) == len(b) and all(exact(x, y) for x, y in zip(a, b, strict=True))
    return strict_equal(a, b)


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**53), 2**53), st.text(max_size=4),
    st.floats(allow_nan=True, allow_infinity=True), st.integers(-3, 3).map(float),
    st.sampled_from([Level.LOW, Level.HIGH]),
)
keys = st.one_of(st.text(max_size=3), st.just(FLOAT_TAG), st.integers(0, 2))
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(keys, inner, max_size=4),
        st.dictionaries(st.just(FLOAT_TAG), inner, min_size=1, max_size=1),
    ),
    max_leaves=20,
)


def plainify(value: Any) -> Any:
    """IntEnum members as the ints they are stored as (encode_plain keeps the member)."""
    if isinstance(value, enum.IntEnum):
        return int(value)
    if isinstance(value, dict):
        return {k: plainify(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(plainify(v) for v in value)
    return value


def verdict(fn: Any, value: Any) -> tuple[bool, Any]:
    try:
        return True, fn(value)
    except InvalidValueError:
        return False, None


@settings(max_examples=300, deadline=None)
@given(values)
def test_encode_checked_agrees_with_check_value_and_encode_plain(value: Any) -> None:
    ok_check, _ = verdict(check_value, value)
    ok_enc, enc = verdict(encode_checked, value)
    assert ok_check == ok_enc
    if not ok_enc:
        return
    assert strict_equal(enc, encode_plain(plainify(value)))
    r = Replica()
    r.write_path("d", ("v",), value, depth=0)
    back = r.read_path("d", ("v",))
    # Identity must imply an exact read-back (the entity cache relies on it). The converse does
    # not hold: an integral float is tagged (a new object) yet reads back exactly as a float.
    if enc is value:
        assert exact(back, value), (value, back)
    elif not exact(back, value):
        assert enc is not value


@pytest.mark.parametrize("value", [[1, 2], {"a": 1.5, "b": [1, "x"]}, {"a": {"b": [None, True]}}, "s", 3])
def test_exact_values_come_back_as_the_same_object(value: Any) -> None:
    assert encode_checked(value) is value


@pytest.mark.parametrize("value", [(1,), {"a": 2.0}, [Level.LOW], {"a": (1,)}, OrderedDict(a=1)])
def test_inexact_values_come_back_as_new_objects(value: Any) -> None:
    enc = encode_checked(value)
    assert enc is not value
    assert strict_equal(enc, encode_plain(plainify(value)))


def test_str_enum_value_is_stored_as_its_value() -> None:
    r = Replica()
    r.write(("k",), {"c": Color.RED})
    assert r.read(("k",)) == {"c": "red"}
    enc = encode_checked({"c": Color.RED})
    assert enc == {"c": "red"} and type(enc["c"]) is str


def nest(n: int, container: str) -> Any:
    v: Any = 1
    for _ in range(n):
        v = {"a": v} if container == "dict" else [v]
    return v


@pytest.mark.parametrize("value", [nest(250, "dict"), nest(201, "list"), {"a": nest(200, "list")}, nest(2000, "dict")],
                         ids=["dict250", "list201", "dict-list200", "dict2000"])
def test_depth_limit_is_the_same_for_both(value: Any) -> None:
    assert verdict(check_value, value)[0] == verdict(encode_checked, value)[0]
