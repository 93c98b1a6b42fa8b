"""Query keys: validation, stable hashing and prefix matching. Pure functions only.

A query key is a non-empty tuple whose parts are ``str``, ``int`` or mappings (``dict``) of
JSON-like values, for example ``("todos",)``, ``("todos", 5)`` or
``("todos", {"status": "done", "page": 2})``. Lists are accepted and turned into tuples.

- :func:`hash_key` gives a string that is equal for equal keys in any process, whatever the
  insertion order of mapping keys (mapping keys are sorted, as TanStack's ``hashKey`` does).
- :func:`partial_match_key` is the filter rule: a key matches a filter key when the filter is a
  prefix of it, part by part, where a mapping part matches when the filter's mapping is a subset
  (a list inside it matches when the filter's list is a prefix, as TanStack compares arrays).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

from .errors import InvalidKeyError

KeyPart: TypeAlias = "str | int | Mapping[str, Any]"
QueryKey: TypeAlias = "tuple[KeyPart, ...]"

__all__ = [
    "KeyPart",
    "QueryKey",
    "hash_key",
    "key_part_str",
    "normalize_key",
    "partial_match_key",
]


def _check_json(value: Any, where: str) -> Any:
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidKeyError(f"{where}: non-finite float {value!r} in a key")
        return value
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise InvalidKeyError(f"{where}: mapping keys in a query key must be str, got {k!r}")
            out[k] = _check_json(v, where)
        return out
    if isinstance(value, (list, tuple)):
        return [_check_json(v, where) for v in value]
    raise InvalidKeyError(f"{where}: {type(value).__name__} is not allowed in a query key")


def normalize_key(key: Sequence[Any]) -> QueryKey:
    """Validate ``key`` and return it as a tuple. Raises :class:`InvalidKeyError`.

    Parts must be ``str``, ``int`` (not ``bool``) or mappings with str keys and JSON-like values.
    """
    if isinstance(key, (str, bytes)) or not isinstance(key, Sequence):
        raise InvalidKeyError(f"a query key is a tuple of parts, got {key!r}")
    if len(key) == 0:
        raise InvalidKeyError("a query key cannot be empty")
    parts: list[KeyPart] = []
    for i, part in enumerate(key):
        if isinstance(part, bool) or not isinstance(part, (str, int, Mapping)):
            raise InvalidKeyError(f"key part {i} must be str, int or a mapping, got {part!r}")
        parts.append(_check_json(part, f"key part {i}") if isinstance(part, Mapping) else part)
    return tuple(parts)


def hash_key(key: Sequence[Any]) -> str:
    """A stable string for ``key``: equal keys give equal hashes in every process."""
    return json.dumps(list(normalize_key(key)), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def key_part_str(part: KeyPart) -> str:
    """The text of one key part as used in a document path: ``5`` -> ``"5"``, a mapping as sorted JSON."""
    if isinstance(part, str):
        return part
    if isinstance(part, int):
        return str(part)
    return json.dumps(part, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _part_matches(value: Any, pattern: Any) -> bool:
    if isinstance(pattern, Mapping):
        if not isinstance(value, Mapping):
            return False
        return all(k in value and _part_matches(value[k], v) for k, v in pattern.items())
    if isinstance(pattern, bool) or isinstance(value, bool):
        return type(pattern) is type(value) and pattern == value
    if isinstance(pattern, (list, tuple)):
        return (  # as TanStack: a list matches like a mapping of its indexes (a prefix)
            isinstance(value, (list, tuple))
            and len(value) >= len(pattern)
            and all(_part_matches(a, b) for a, b in zip(value, pattern, strict=False))
        )
    return bool(type(value) is type(pattern) and value == pattern)


def partial_match_key(key: Sequence[Any], prefix: Sequence[Any]) -> bool:
    """True when ``prefix`` matches the start of ``key`` (mapping parts by subset)."""
    if len(prefix) > len(key):
        return False
    return all(_part_matches(k, p) for k, p in zip(key, prefix, strict=False))
