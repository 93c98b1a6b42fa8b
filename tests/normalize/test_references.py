"""ReferenceIndex (crdtsync/normalize/references.py): entity -> queries, and the counts it
hands the document collector."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from crdtsync import FakeClock
from crdtsync.normalize import EntityType
from crdtsync.normalize.doc_gc import DocCollector
from crdtsync.normalize.references import ReferenceIndex
from crdtsync.normalize.shape import EntityKey, Refs

TODO = EntityType("todo", id="id")


@dataclass
class FakeQuery:
    """An EntityReferrer without a query layer."""

    query_hash: str
    query_key: tuple[Any, ...] = ()
    normalize_shape: Any = None
    current_data: Any = None
    changes: list[set[EntityKey]] = field(default_factory=list)

    def entities_changed(self, keys: set[EntityKey]) -> None:
        self.changes.append(keys)


def refs(*keys: EntityKey) -> Refs:
    r = Refs()
    for key in keys:
        r.keys[key] = TODO
    return r


def index() -> tuple[ReferenceIndex, DocCollector, list[str]]:
    watched: list[str] = []
    collector = DocCollector(FakeClock(), lambda doc_id: None)
    return ReferenceIndex(collector, watched.append), collector, watched


def test_notify_reaches_exactly_the_referencing_queries_once() -> None:
    idx, collector, watched = index()
    a, b, c = FakeQuery("a"), FakeQuery("b"), FakeQuery("c")
    idx.set(a, refs(("d1", "1"), ("d1", "2")))
    idx.set(b, refs(("d1", "2")))
    idx.set(c, refs(("d2", "9")))
    assert watched == ["d1", "d1", "d2"] and collector.referenced_docs() == {"d1": 3, "d2": 1}
    holders = idx.holders("d1")
    assert holders is not None
    idx.notify("d1", holders, ["1", "2", "3"])
    assert a.changes == [{("d1", "1"), ("d1", "2")}] and b.changes == [{("d1", "2")}] and c.changes == []


def test_new_refs_replace_old_ones_and_release_forgets() -> None:
    idx, collector, _ = index()
    a = FakeQuery("a")
    idx.set(a, refs(("d1", "1"), ("d1", "2")))
    idx.set(a, refs(("d1", "2"), ("d1", "3")))
    assert collector.referenced_docs() == {"d1": 2}
    holders = idx.holders("d1")
    assert holders is not None and sorted(holders) == ["2", "3"]
    assert idx.refs_of("a") is not None
    idx.release(a)
    assert idx.holders("d1") is None and idx.refs_of("a") is None and collector.referenced_docs() == {}
