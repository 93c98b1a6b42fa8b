"""crdtsync/pycrdt_internals.py: each helper that reaches into pycrdt still does what crdtsync
relies on (run against the pinned pycrdt; the commit points have their own
tests/core/test_commit_points.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pycrdt import Array, Doc, Map

from crdtsync.errors import FrameError
from crdtsync.pycrdt_internals import (
    apply_untrusted,
    array_set,
    insert_raw,
    is_pycrdt_panic,
    observe_deep_raw,
    open_txn,
    raw,
    to_json,
    update_since,
)


def test_open_txn_only_inside_a_transaction() -> None:
    doc: Doc[Any] = Doc()
    assert open_txn(doc) is None
    with doc.transaction():
        assert open_txn(doc) is not None
    assert open_txn(doc) is None


def test_insert_raw_inside_and_outside_a_transaction() -> None:
    doc: Doc[Any] = Doc()
    root = doc.get("r", type=Map)
    root["arr"] = Array()
    arr = root["arr"]
    with doc.transaction():
        insert_raw(root, "a", 1)
        insert_raw(arr, 0, "x")
    insert_raw(root, "b", [1, 2])  # outside: the public path
    insert_raw(arr, 1, "y")
    assert root.to_py() == {"a": 1, "b": [1, 2], "arr": ["x", "y"]}


def test_array_set_puts_a_shared_type_at_an_index() -> None:
    doc: Doc[Any] = Doc()
    arr = doc.get("a", type=Array)
    array_set(arr, 0, Map())
    arr[0]["k"] = "v"
    assert arr.to_py() == [{"k": "v"}]


def test_to_json_and_raw() -> None:
    doc: Doc[Any] = Doc()
    root = doc.get("r", type=Map)
    root["list"] = Array([1, "two", {"three": 3}])
    assert json.loads(to_json(root)) == {"list": [1, "two", {"three": 3}]}
    assert raw(root) is not root and hasattr(raw(root), "insert")


def test_observe_deep_raw_reports_paths() -> None:
    doc: Doc[Any] = Doc()
    root = doc.get("r", type=Map)
    root["m"] = Map()
    paths: list[Any] = []
    stop = observe_deep_raw(root, lambda events: paths.extend(e.path for e in events))
    root["m"]["k"] = 1
    assert paths == [["m"]]
    stop()
    root["m"]["k"] = 2
    assert paths == [["m"]]  # dropped: no more events


def test_is_pycrdt_panic() -> None:
    class PanicException(BaseException):
        pass

    assert is_pycrdt_panic(PanicException())
    assert not is_pycrdt_panic(ValueError())


def test_untrusted_bytes_fail_as_frame_errors_and_good_ones_apply() -> None:
    src: Doc[Any] = Doc()
    src.get("m", type=Map)["k"] = "v"
    dst: Doc[Any] = Doc()
    apply_untrusted(dst, bytes(src.get_update()))
    assert dst.get("m", type=Map)["k"] == "v"
    assert update_since(dst, bytes(src.get_state())) == b"\x00\x00"
    with pytest.raises(FrameError, match="does not decode"):
        apply_untrusted(dst, b"\xff\xfe\xfd")
    with pytest.raises(FrameError, match="bad state vector"):
        update_since(dst, b"\xff\xff\xff")
