"""EntityStore: entities stored once, referenced by queries, versioned, garbage-collected.

Every :class:`~crdtsync.cache.client.QueryClient` has one, as ``client.entities``. A query
with a ``normalize`` shape writes its result through it: each entity goes to its entity
document (``entity_type.doc_id(id)``, path ``(id,)``) and the query's own slot keeps only ids.
Reading denormalizes, and the query watches exactly the entities it references, so an edit to
one entity (local, fetched or remote) notifies the observers of the queries that reference it
and nobody else.

Monotonic reads: with a ``version`` field, an incoming entity whose version is older than the
stored one is ignored, whatever order responses arrive in. Without one, the rule is by fetch
start time: a response to a fetch that *started* before the fetch that last wrote the entity
does not overwrite it (a slow, older request never clobbers a newer answer). Local edits
(``update``) always apply.

Garbage collection: when no query in the cache references any entity of a document for the
entity type's ``gc_time``, the document is unloaded from memory (its peers and stores keep it).
With ``partition="entity"`` that is exactly "unreferenced entities are collected"; with one
document per type, the document goes when none of its entities is referenced.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import InvalidValueError
from ..origins import LOCAL, Origin
from ..values import MISSING
from .entity import EntityType, is_newer_or_same
from .shape import Ref, check_shape, denormalize, normalize

if TYPE_CHECKING:
    from ..cache.query import Query
    from ..clock import TimerHandle
    from ..replica import Replica


class EntityStore:
    def __init__(self, replica: Replica, clock: Any):
        self.replica = replica
        self.clock = clock
        self._types: dict[str, EntityType] = {}
        self._written_at: dict[tuple[str, str], float] = {}
        self._query_refs: dict[str, set[tuple[str, str]]] = {}
        self._query_watches: dict[str, dict[tuple[str, str], Callable[[], None]]] = {}
        self._doc_refcount: dict[str, int] = {}
        self._gc_timers: dict[str, TimerHandle] = {}
        self._cache: dict[tuple[str, str], tuple[int, Any]] = {}
        self._doc_gc_time: dict[str, float] = {}
        self._ref_listeners: list[Callable[[str, bool], None]] = []
        self.skipped_stale = 0  # entity writes ignored by the monotonic-read rule

    # -- types -------------------------------------------------------------------------------
    def define(self, name: str, **options: Any) -> EntityType:
        """Declare (or redeclare) an entity type; see :class:`EntityType` for the options."""
        t = EntityType(name, **options)
        for sub in t.relations.values():
            check_shape(sub)
        self._types[name] = t
        return t

    def register(self, entity_type: EntityType) -> EntityType:
        self._types[entity_type.name] = entity_type
        return entity_type

    def type(self, name: str) -> EntityType:
        return self._types[name]

    # -- entities ----------------------------------------------------------------------------
    def get(self, entity_type: EntityType, eid: str | int) -> Any:
        """The stored entity (relations as ids), or None."""
        return self._read_entity(entity_type, str(eid))

    def _read_entity(self, t: EntityType, eid: str) -> Any:
        doc_id = t.doc_id(eid)
        if not self.replica.has_doc(doc_id):
            return None
        key = (doc_id, eid)
        version = self.replica.doc_version(doc_id)
        if not self.replica.in_batch:
            hit = self._cache.get(key)
            if hit is not None and hit[0] == version:
                return hit[1]
        value = self.replica.read_path(doc_id, (eid,))
        value = None if value is MISSING else value
        if not self.replica.in_batch:
            self._cache[key] = (version, value)
        return value

    def write(self, entity_type: EntityType, obj: Mapping[str, Any], *, origin: Origin = LOCAL,
              started_at: float | None = None) -> bool:
        """Store one entity (its relations normalized too). Returns False when every entity
        write was skipped by the monotonic-read rule or changed nothing."""
        found: list[tuple[EntityType, str, dict[str, Any]]] = []
        normalize(obj, entity_type, found)
        changed = False
        with self.replica.batch(origin=origin):
            for t, eid, ent in found:
                changed = self._write_entity(t, eid, ent, origin, started_at) or changed
        return changed

    def update(self, entity_type: EntityType, eid: str | int, changes: Mapping[str, Any], *,
               origin: Origin = LOCAL) -> Any:
        """Merge ``changes`` into a stored entity (a local edit: no version check). Every query
        that references it is notified. Returns the new entity."""
        sid = str(eid)
        current = self._read_entity(entity_type, sid)
        if current is None:
            raise KeyError(f"no {entity_type.name} {sid!r} is stored")
        new = {**current, **changes}
        self.replica.write_path(entity_type.doc_id(sid), (sid,), new, depth=entity_type.depth, origin=origin)
        return new

    def _write_entity(self, t: EntityType, eid: str, ent: dict[str, Any], origin: Origin,
                      started_at: float | None) -> bool:
        doc_id = t.doc_id(eid)
        if t.version is not None:
            current = self._read_entity(t, eid)
            if isinstance(current, dict) and not is_newer_or_same(t.version_of(ent), t.version_of(current)):
                self.skipped_stale += 1
                return False
        elif started_at is not None:
            last = self._written_at.get((t.name, eid))
            if last is not None and started_at < last:
                self.skipped_stale += 1
                return False
            self._written_at[(t.name, eid)] = started_at
        return self.replica.write_path(doc_id, (eid,), ent, depth=t.depth, origin=origin)

    # -- queries -----------------------------------------------------------------------------
    def write_query(self, query: Query, data: Any, *, origin: Origin, started_at: float | None = None) -> None:
        """Write a normalized query's result: entities to their documents, ids to the slot."""
        shape = query.options.normalize
        found: list[tuple[EntityType, str, dict[str, Any]]] = []
        stored = normalize(data, shape, found)
        with self.replica.batch(origin=origin):
            for t, eid, ent in found:
                self._write_entity(t, eid, ent, origin, started_at)
            self.replica.write(query.query_key, stored, origin=origin)

    def read_query(self, query: Query) -> Any:
        """The denormalized data of ``query`` (MISSING when it has none); refreshes which
        entities the query watches."""
        stored = self.replica.read(query.query_key)
        if stored is MISSING:
            self._set_refs(query, set())
            return MISSING
        refs: set[Ref] = set()
        value = denormalize(stored, query.options.normalize, self._read_entity, refs)
        self._set_refs(query, refs)
        return value

    def read_window(self, query_key: Sequence[Any], start: int, stop: int, entity_type: EntityType) -> list[Any]:
        """Entities ``start:stop`` of a list query stored as ids, reading only those entities
        (a large list is never built in Python)."""
        route = self.replica.route(query_key)
        if not self.replica.has_doc(route.doc_id):
            return []
        raw = self.replica.raw(route.doc_id, route.path)
        if raw is MISSING:
            return []
        try:
            ids = raw[start:stop]
        except TypeError as exc:
            raise InvalidValueError(f"{tuple(query_key)!r} does not hold a list") from exc
        out = []
        for eid in ids:
            sid = str(int(eid)) if isinstance(eid, float) and eid.is_integer() else str(eid)
            ent = self._read_entity(entity_type, sid)
            if ent is not None:
                out.append(ent)
        return out

    def release(self, query: Query) -> None:
        """Forget a query's references (it left the cache)."""
        self._set_refs(query, set())
        self._query_refs.pop(query.query_hash, None)
        self._query_watches.pop(query.query_hash, None)

    def _set_refs(self, query: Query, refs: set[Ref]) -> None:
        for t, eid in refs:
            self._doc_gc_time.setdefault(t.doc_id(eid), t.gc_time)
        new = {(t.doc_id(eid), eid) for t, eid in refs}
        old = self._query_refs.get(query.query_hash, set())
        if new == old:
            return
        watches = self._query_watches.setdefault(query.query_hash, {})
        for doc_id, eid in old - new:
            stop = watches.pop((doc_id, eid), None)
            if stop is not None:
                stop()
            self._decref(doc_id, self._doc_gc_time.get(doc_id, 300.0))
        for doc_id, eid in new - old:
            watches[(doc_id, eid)] = self.replica.watch(doc_id, (eid,), query._on_replica_change)
            self._incref(doc_id)
        self._query_refs[query.query_hash] = new

    def on_reference(self, callback: Callable[[str, bool], None]) -> Callable[[], None]:
        """Call ``callback(doc_id, True)`` when an entity document gains its first query
        reference and ``callback(doc_id, False)`` when it is collected (for sync bindings)."""
        self._ref_listeners.append(callback)
        return lambda: self._ref_listeners.remove(callback) if callback in self._ref_listeners else None

    def _incref(self, doc_id: str) -> None:
        n = self._doc_refcount.get(doc_id, 0) + 1
        self._doc_refcount[doc_id] = n
        timer = self._gc_timers.pop(doc_id, None)
        if timer is not None:
            timer.cancel()
        elif n == 1:
            for cb in list(self._ref_listeners):
                cb(doc_id, True)

    def _decref(self, doc_id: str, gc_time: float) -> None:
        n = self._doc_refcount.get(doc_id, 0) - 1
        if n > 0:
            self._doc_refcount[doc_id] = n
            return
        self._doc_refcount.pop(doc_id, None)
        if doc_id in self._gc_timers or gc_time == float("inf"):
            return
        self._gc_timers[doc_id] = self.clock.call_later(gc_time, lambda: self._collect(doc_id))

    def _collect(self, doc_id: str) -> None:
        self._gc_timers.pop(doc_id, None)
        if self._doc_refcount.get(doc_id, 0) == 0:
            for cb in list(self._ref_listeners):
                cb(doc_id, False)
            self.replica.unload(doc_id)
            self._doc_gc_time.pop(doc_id, None)
            for key in [k for k in self._cache if k[0] == doc_id]:
                del self._cache[key]

    def referenced_docs(self) -> dict[str, int]:
        """Entity documents and how many query references each has (for tests and tools)."""
        return dict(self._doc_refcount)

