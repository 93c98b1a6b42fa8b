"""Freshness (crdtsync/normalize/freshness.py): the monotonic-read rule."""

from __future__ import annotations

from typing import Any

from crdtsync.normalize import EntityType
from crdtsync.normalize.freshness import Freshness

PLAIN = EntityType("plain", id="id")
VERSIONED = EntityType("versioned", id="id", version="v")


def stored(value: Any) -> Any:
    return lambda t, eid: value


def test_without_a_version_an_older_fetch_never_overwrites_a_newer_write() -> None:
    f = Freshness()
    old, new = f.tick(), f.tick()
    assert f.accept(PLAIN, "1", {"id": 1}, new, False, stored(None))
    assert not f.accept(PLAIN, "1", {"id": 1}, old, False, stored(None))
    assert f.accept(PLAIN, "2", {"id": 2}, old, False, stored(None))  # per entity


def test_without_a_version_a_local_edit_beats_a_fetch_started_before_it() -> None:
    f = Freshness()
    started = f.tick()
    f.local_edit(PLAIN, "1")
    assert not f.accept(PLAIN, "1", {"id": 1}, started, False, stored(None))
    assert f.accept(PLAIN, "1", {"id": 1}, f.tick(), False, stored(None))
    assert f.accept(PLAIN, "1", {"id": 1}, None, False, stored(None))  # local writes always apply


def test_with_a_version_older_versions_are_refused_whatever_the_order() -> None:
    f = Freshness()
    late = f.tick()
    assert not f.accept(VERSIONED, "1", {"id": 1, "v": 1}, late, False, stored({"id": 1, "v": 2}))
    assert f.accept(VERSIONED, "1", {"id": 1, "v": 3}, late, False, stored({"id": 1, "v": 2}))
    assert f.accept(VERSIONED, "1", {"id": 1, "v": 1}, late, True, stored({"id": 1, "v": 2}))  # not loaded


def test_with_a_version_the_same_version_fetched_before_a_local_edit_keeps_the_edit() -> None:
    f = Freshness()
    started = f.tick()
    assert f.accept(VERSIONED, "1", {"id": 1, "v": 2, "t": "mine"}, None, False, stored({"id": 1, "v": 2}))
    assert not f.accept(VERSIONED, "1", {"id": 1, "v": 2, "t": "old"}, started, False, stored({"id": 1, "v": 2}))
    assert f.accept(VERSIONED, "1", {"id": 1, "v": 2}, f.tick(), False, stored({"id": 1, "v": 2}))


def test_ticks_increase_strictly() -> None:
    f = Freshness()
    assert [f.tick() for _ in range(3)] == [1.0, 2.0, 3.0]
