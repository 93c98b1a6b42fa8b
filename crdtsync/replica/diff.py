"""How a value is written into a document as a diff: only the leaves that changed are written
(``set_value``), maps and lists are compared and patched in place (``diff_map``, ``diff_array``),
and new arrays are built without pycrdt's quadratic insert walk (``insert_many``). Used by
:class:`~crdtsync.replica.Replica`; every function runs inside the caller's transaction."""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from pycrdt import Array, Map

from ..pycrdt_internals import array_set, can_commit, commit_point, insert_raw, open_txn, raw
from ..values import MISSING, PLAIN_SCALARS, decode, encode_checked, scalars_only, strict_equal

# -- diff writes ---------------------------------------------------------------------------
#
# pycrdt inserts array items one at a time, and inside one transaction each insert at index i
# walks every not-yet-squashed block before i: building a 20,000-item array with Array(list)
# or sequential inserts took 17 s and 5.6 GB here. Every array write goes through _insert_many:
# it appends forward and commits every _CHUNK items (see txn.py), which is linear and leaves
# one squashed block per run of plain items; where a commit is not allowed (somebody else's
# transaction is open around ours) it inserts in reverse order at one fixed index, which never
# walks the new items either but leaves one block per item.

_CHUNK = 48  # items appended between commit points


def _insert_many(arr: Array[Any], index: int, values: Sequence[Any], depth: int | None) -> None:
    doc = arr.doc
    deeper = depth is None or depth > 0
    # Forward only for plain items: shared types (a Map or Array per item) never squash, so
    # appending after n of them walks n blocks; in reverse they stay linear.
    if len(values) > _CHUNK and can_commit(doc) and (
            not deeper or scalars_only(values) or not any(isinstance(v, (Mapping, list, tuple)) for v in values)):
        yarr = raw(arr)
        tx = open_txn(doc)
        for i, v in enumerate(values):
            yarr.insert(tx, index + i, v if type(v) in PLAIN_SCALARS else encode_checked(v))
            if i % _CHUNK == _CHUNK - 1:
                commit_point(doc)
                tx = open_txn(doc)  # the commit point opened a new one
        return
    for v in reversed(values):
        _insert_one(arr, index, v, depth)


def _insert_one(arr: Array[Any], index: int, value: Any, depth: int | None) -> None:
    deeper = depth is None or depth > 0
    nxt = None if depth is None else depth - 1
    if deeper and isinstance(value, Mapping):
        array_set(arr, index, Map())
        _fill_map(arr[index], value, nxt)
    elif deeper and isinstance(value, (list, tuple)):
        array_set(arr, index, Array())
        _insert_many(arr[index], 0, value, nxt)
    else:
        _raw_insert(arr, index, encode_checked(value))


def _fill_map(m: Map[Any], value: Mapping[str, Any], depth: int | None) -> None:
    for k, v in value.items():
        assign(m, k, v, depth)


def assign(m: Map[Any], key: str, value: Any, depth: int | None) -> None:
    """Store ``value`` under ``key`` of map ``m`` as new content (no diffing)."""
    deeper = depth is None or depth > 0
    nxt = None if depth is None else depth - 1
    if deeper and isinstance(value, Mapping):
        m[key] = Map()
        _fill_map(m[key], value, nxt)
    elif deeper and isinstance(value, (list, tuple)):
        m[key] = Array()
        _insert_many(m[key], 0, value, nxt)
    else:
        _raw_insert(m, key, encode_checked(value))


def _raw_insert(container: Map[Any] | Array[Any], key: Any, plain: Any) -> None:
    """Insert a plain value (no shared types inside) straight into yrs. pycrdt's own setter adds
    a transaction context and type checks per call (about 10 us each here); crdtsync calls this
    only inside one of its open transactions, with values ``encode_checked`` produced."""
    insert_raw(container, key, plain)


def set_value(parent: Any, key: Any, new: Any, depth: int | None) -> bool:
    """Write ``new`` into ``parent[key]`` (a Map key or an Array index), diffing containers.
    Returns True when anything was written."""
    cur = parent[key] if (isinstance(parent, Array) or key in parent) else MISSING
    deeper = depth is None or depth > 0
    nxt = None if depth is None else depth - 1
    if deeper and isinstance(cur, Map) and isinstance(new, Mapping):
        return _diff_map(cur, new, nxt)
    if deeper and isinstance(cur, Array) and isinstance(new, (list, tuple)):
        return _diff_array(cur, list(new), nxt)
    if cur is not MISSING and not isinstance(cur, (Map, Array)) and _plain_equal(cur, new, deeper):
        return False
    if isinstance(parent, Array):
        del parent[key]
        _insert_one(parent, key, new, depth)
    else:
        assign(parent, key, new, depth)
    return True


def _plain_equal(stored: Any, new: Any, deeper: bool) -> bool:
    # A container stored as a plain value while the route now wants shared types must be rewritten.
    if deeper and isinstance(new, (Mapping, list, tuple)):
        return False
    return strict_equal(decode(stored), new)


def _diff_map(m: Map[Any], new: Mapping[str, Any], depth: int | None) -> bool:
    # Read the whole map once (one linear JSON export) instead of key by key, and touch only
    # the keys whose value differs.
    old = decode(m)
    gone = [k for k in old if k not in new]
    for k in gone:
        del m[k]
    changed = bool(gone)
    for k, v in new.items():
        if k in old and strict_equal(old[k], v):
            continue
        changed = set_value(m, k, v, depth) or changed
    return changed


def _diff_array(a: Array[Any], new: list[Any], depth: int | None) -> bool:
    old = decode(a)
    n_old, n_new = len(old), len(new)
    p = 0
    while p < n_old and p < n_new and strict_equal(old[p], new[p]):
        p += 1
    s = 0
    while s < n_old - p and s < n_new - p and strict_equal(old[n_old - 1 - s], new[n_new - 1 - s]):
        s += 1
    old_mid, new_mid = n_old - p - s, n_new - p - s
    if old_mid == new_mid == 0:
        return False
    if old_mid == 0 or new_mid == 0 or old_mid * new_mid > _MAX_DIFF_CELLS:
        _replace_range(a, p, old_mid, new[p : p + new_mid], depth)
        return True
    # Align the changed middle item by item, so an insert or a removal among long runs of
    # unchanged items writes only that insert or removal (and concurrent edits elsewhere merge).
    old_keys = [_item_key(x) for x in old[p : p + old_mid]]
    new_keys = [_item_key(x) for x in new[p : p + new_mid]]
    ops = difflib.SequenceMatcher(None, old_keys, new_keys, autojunk=False).get_opcodes()
    for tag, i1, i2, j1, j2 in reversed(ops):  # from the end, so earlier indices stay valid
        if tag == "equal":
            continue
        if tag == "replace" and i2 - i1 == j2 - j1:
            for k in range(i2 - i1):
                set_value(a, p + i1 + k, new[p + j1 + k], depth)
            continue
        _replace_range(a, p + i1, i2 - i1, new[p + j1 : p + j2], depth)
    return True


_MAX_DIFF_CELLS = 4_000_000  # above this, replace the changed middle wholesale


def _item_key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _replace_range(a: Array[Any], index: int, count: int, items: list[Any], depth: int | None) -> None:
    if count:
        del a[index : index + count]
    _insert_many(a, index, items, depth)
