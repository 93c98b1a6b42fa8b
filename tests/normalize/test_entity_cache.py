"""EntityCache (crdtsync/normalize/entity_cache.py): read-through cache of decoded entities."""

from __future__ import annotations

from crdtsync import Replica
from crdtsync.normalize import EntityType
from crdtsync.normalize.entity_cache import EntityCache

TODO = EntityType("todo", id="id")


def setup() -> tuple[Replica, EntityCache, str]:
    replica = Replica()
    cache = EntityCache(replica)
    doc = TODO.doc_id("1")
    replica.write_path(doc, ("1",), {"id": 1, "title": "a"})
    return replica, cache, doc


def test_reads_through_once_then_from_the_cache() -> None:
    _replica, cache, doc = setup()
    first = cache.read(TODO, "1")
    assert first == {"id": 1, "title": "a"} and cache.read(TODO, "1") is first
    assert doc in cache.entity_docs
    assert cache.read(TODO, "404") is None


def test_nothing_is_cached_inside_a_batch() -> None:
    replica, cache, doc = setup()
    with replica.batch():
        assert cache.read(TODO, "1") == {"id": 1, "title": "a"}
    assert doc not in cache.docs


def test_a_change_drops_the_changed_entities_and_own_writes_are_cached_as_written() -> None:
    _replica, cache, doc = setup()
    cache.read(TODO, "1")
    assert cache.apply_change(doc, [("1", "title")], None, None) == ["1"]
    assert "1" not in cache.docs[doc]
    mine = {"id": 1, "title": "b"}
    cache.apply_change(doc, [("1",)], ({"1": mine}, {}), None)
    assert cache.read(TODO, "1") is mine
    cache.apply_change(doc, [("1",)], ({"1": mine}, {"1": "encoded"}), None)  # inexact: re-read
    assert "1" not in cache.docs[doc]


def test_a_root_change_counts_every_known_entity() -> None:
    _replica, cache, doc = setup()
    cache.read(TODO, "1")
    assert cache.apply_change(doc, [()], None, ["2"]) == {"1", "2"}
    cache.unload(doc)
    assert doc not in cache.docs and doc not in cache.entity_docs
