"""JSON-like values and their representation inside pycrdt documents.

This module is the one place that knows pycrdt's number quirk: yrs stores numbers as 64-bit
floats (JS numbers), so an ``int`` 5 written into a Map reads back as ``5.0``. crdtsync keeps
the type the user wrote:

- an ``int`` is stored as a plain number (Yjs clients see a normal number) and any integral
  float read back is returned as ``int``;
- a ``float`` whose value is integral (``5.0``) is stored as the one-key object
  ``{"__crdtsync_float__": 5.0}`` so it reads back as ``float``; other floats are stored plainly;
- ints beyond 2**53 are stored by yrs as big integers and stay ``int``.

Also here: :func:`strict_equal` (``1``, ``1.0`` and ``True`` are *different* values) and
:func:`replace_equal_deep`, the structural sharing that keeps unchanged parts of a new result
identical (``is``) to the previous result, so observers can compare cheaply.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any, TypeAlias

from pycrdt import Array, Map, Text

from .errors import InvalidValueError
from .pycrdt_internals import is_pycrdt_panic as is_pycrdt_panic  # re-exported (it lived here)
from .pycrdt_internals import to_json

JSON: TypeAlias = "bool | int | float | str | list[Any] | dict[str, Any] | None"

FLOAT_TAG = "__crdtsync_float__"
_MAX_SAFE = 2**53


class _Missing:
    """Sentinel for "no value at this path" (distinct from a stored ``None``)."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()


PLAIN_SCALARS = frozenset({str, int, bool, type(None)})


def check_value(value: Any) -> None:
    """Raise :class:`InvalidValueError` unless ``value`` is JSON-like and storable: str keys,
    finite floats, ints within 64 bits (what yrs stores), nested at most 200 levels."""
    encode_checked(value)


def encode_plain(value: Any) -> Any:
    """Encode a JSON-like value as a plain (non-shared) yrs value: tags integral floats."""
    t = type(value)
    if t in PLAIN_SCALARS:
        return value
    if t is dict:
        return {k: v if type(v) in PLAIN_SCALARS else encode_plain(v) for k, v in value.items()}
    if isinstance(value, bool) or value is None or isinstance(value, (str, int)):
        return value
    if isinstance(value, float):
        return {FLOAT_TAG: value} if value.is_integer() else value
    if isinstance(value, Mapping):
        return {k: encode_plain(v) for k, v in value.items()}
    return [encode_plain(v) for v in value]


_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1
_MAX_DEPTH = 200


def _check_int(value: int) -> None:
    if not _I64_MIN <= value <= _I64_MAX:
        raise InvalidValueError(f"int {value} does not fit in 64 bits (what a document stores)")


def encode_checked(value: Any, _depth: int = 0) -> Any:
    """Validate ``value`` (see :func:`check_value`) and encode it (see :func:`encode_plain`) in
    one pass. Returns ``value`` itself (the same object) only when it is stored exactly as it
    is, so that reading it back gives an equal value of the same types: no tuple, no integral
    float, no subclass of a JSON type anywhere in it. Otherwise it returns a new encoded value
    that shares the exact parts. Enum members with a str, int or float mix-in are stored as
    their values."""
    t = type(value)
    if t is str or t is bool or value is None:
        return value
    if t is int:
        _check_int(value)
        return value
    if _depth > _MAX_DEPTH:
        raise InvalidValueError(f"value nested deeper than {_MAX_DEPTH} levels")
    if t is dict:
        if len(value) == 1 and FLOAT_TAG in value:
            raise InvalidValueError(f"a mapping whose only key is {FLOAT_TAG!r} is reserved by crdtsync")
        out: dict[str, Any] | None = None
        for k, v in value.items():
            if type(k) is not str:
                if not isinstance(k, str):
                    raise InvalidValueError(f"mapping keys must be str, got {k!r}")
                if out is None:
                    out = dict(value)
                del out[k]
                out[str.__str__(k)] = v
                k = str.__str__(k)
            tv = type(v)
            # Inline fast paths (this runs once per entity of a 100,000-entity load): scalars, a
            # finite non-integral float (``x - x`` is nan for inf and nan) and a list of scalars.
            if tv is str or tv is bool or v is None:
                continue
            if tv is int and _I64_MIN <= v <= _I64_MAX:
                continue
            if tv is float and v - v == 0.0 and v % 1.0 != 0.0:
                continue
            if tv is list and scalars_only(v):
                continue
            e = encode_checked(v, _depth + 1)
            if e is not v:
                if out is None:
                    out = dict(value)
                out[k] = e
        return value if out is None else out
    if t is list:
        if scalars_only(value):
            return value
        items: list[Any] | None = None
        for i, v in enumerate(value):
            e = encode_checked(v, _depth + 1)
            if e is not v:
                if items is None:
                    items = list(value)
                items[i] = e
        return value if items is None else items
    if t is float:
        if not math.isfinite(value):
            raise InvalidValueError(f"non-finite float {value!r} cannot be stored")
        return {FLOAT_TAG: value} if value.is_integer() else value
    # Subclasses and other containers: converted to the plain type they read back as.
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, str):
        return str.__str__(value)  # an Enum with a str mix-in: its value, not "Cls.NAME"
    if isinstance(value, int):
        return encode_checked(int.__index__(value), _depth)
    if isinstance(value, float):
        return encode_checked(float.__float__(value), _depth)
    if isinstance(value, Mapping):
        return encode_checked(dict(value.items()), _depth)
    if isinstance(value, (list, tuple)):
        return encode_checked(list(value), _depth)
    raise InvalidValueError(f"{type(value).__name__} cannot be stored in a document")


def scalars_only(items: Iterable[Any]) -> bool:
    """True when every item is a str, bool, None or 64-bit int (stored as it is)."""
    for x in items:
        tx = type(x)
        if tx is str or tx is bool or x is None:
            continue
        if tx is int and _I64_MIN <= x <= _I64_MAX:
            continue
        return False
    return True


def encode(value: Any, depth: int | None) -> Any:
    """Encode ``value`` for writing: mappings and lists become shared ``Map``/``Array`` types
    down to ``depth`` levels (``None``: all the way), plain values below that."""
    if depth is not None and depth <= 0:
        return encode_plain(value)
    nxt = None if depth is None else depth - 1
    if isinstance(value, Mapping):
        return Map({k: encode(v, nxt) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return Array([encode(v, nxt) for v in value])
    return encode_plain(value)


def decode_plain(value: Any) -> Any:
    """Decode a value read with ``to_py()`` (floats as yrs gives them) back to user types."""
    if isinstance(value, float):
        if value.is_integer() and abs(value) <= _MAX_SAFE:
            return int(value)
        return value
    if isinstance(value, dict):
        if len(value) == 1 and FLOAT_TAG in value and isinstance(value[FLOAT_TAG], (int, float)):
            return float(value[FLOAT_TAG])
        return {k: decode_plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode_plain(v) for v in value]
    return value


def shared_to_py(obj: Map[Any] | Array[Any]) -> Any:
    """The plain content of a shared Map or Array, read in one linear pass.

    pycrdt's ``to_py()`` iterates an array by index, and each index lookup walks the array's
    blocks, so it is quadratic on arrays of many separately inserted items (10,000 items:
    0.75 s here). yrs's JSON export is linear (the same array: 6.5 ms).
    """
    return json.loads(to_json(obj))


def decode(obj: Any) -> Any:
    """Decode a value read from a document (shared type or plain) into user types."""
    if isinstance(obj, (Map, Array)):
        return decode_plain(shared_to_py(obj))
    if isinstance(obj, Text):
        return str(obj)
    if hasattr(obj, "to_py") and not isinstance(obj, (dict, list)):
        return decode_plain(obj.to_py())
    return decode_plain(obj)


def strict_equal(a: Any, b: Any) -> bool:
    """Equality that also compares number types: ``1 != 1.0 != True``."""
    if a is b:
        return True
    ta, tb = type(a), type(b)
    if ta is not tb:
        both_maps = isinstance(a, Mapping) and isinstance(b, Mapping)
        both_seqs = isinstance(a, (list, tuple)) and isinstance(b, (list, tuple))
        if not (both_maps or both_seqs):
            return False
    if isinstance(a, Mapping):
        return len(a) == len(b) and all(k in b and strict_equal(v, b[k]) for k, v in a.items())
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(strict_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def replace_equal_deep(prev: Any, new: Any) -> Any:
    """Return ``new``, but reuse every part of ``prev`` that is strictly equal to its
    counterpart in ``new``; returns ``prev`` itself when the two are equal.

    Like TanStack's ``replaceEqualDeep``: observers can then test ``is`` to see what changed.
    """
    if prev is new:
        return prev
    if isinstance(prev, dict) and isinstance(new, dict):
        out: dict[str, Any] = {}
        same = len(prev) == len(new)
        for k, v in new.items():
            if k in prev:
                shared = replace_equal_deep(prev[k], v)
                out[k] = shared
                same = same and shared is prev[k]
            else:
                out[k] = v
                same = False
        return prev if same else out
    if isinstance(prev, list) and isinstance(new, list):
        items = [replace_equal_deep(prev[i], v) if i < len(prev) else v for i, v in enumerate(new)]
        if len(prev) == len(new) and all(a is b for a, b in zip(items, prev, strict=True)):
            return prev
        return items
    return prev if strict_equal(prev, new) else new

