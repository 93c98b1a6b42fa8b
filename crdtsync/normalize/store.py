"""EntityStore: entities stored once, referenced by queries, versioned, garbage-collected.

Every :class:`~crdtsync.cache.client.QueryClient` has one, as ``client.entities``. A query
with a ``normalize`` shape writes its result through it: each entity goes to its entity
document (``entity_type.doc_id(id)``, path ``(id,)``) and the query's own slot keeps only ids.
Reading denormalizes.

Change routing: the store keeps one index, entity -> the queries that reference it, fed by
``Replica.on_change`` (which reports the changed paths of every transaction before any
watcher runs). An edit to one entity (local, fetched or remote) therefore reaches exactly the
queries that reference it, and each of them patches the entity into its previous result at
the positions recorded when it was built (only the containers on those paths are copied), so
the work is proportional to the observers affected, not to the cache or the list size.

Monotonic reads: with a ``version`` field, an incoming entity whose version is older than the
stored one is ignored, whatever order responses arrive in (and one with the *same* version
from a fetch that started before a local edit of it does not undo the edit). Without one, the
rule is by fetch start: a response to a fetch that *started* before the fetch that last wrote
the entity, or before the last local edit of it, does not overwrite it (a slow, older request
never clobbers a newer answer or a newer edit). "Before" is a logical clock of this process
(:meth:`EntityStore.tick`). Local edits (``update``) always apply.

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
from ..values import MISSING, decode
from .entity import EntityType, is_newer_or_same
from .shape import EntityKey, Positions, check_shape, denormalize, normalize, patch, paths_of

if TYPE_CHECKING:
    from ..cache.query import Query
    from ..clock import TimerHandle
    from ..replica import Replica

_SCALARS = (str, int, float, bool, type(None))
_MISS = object()
_BULK_AFTER = 256  # cache misses in one document during one read before reading it whole


class EntityStore:
    def __init__(self, replica: Replica, clock: Any):
        self.replica = replica
        self.clock = clock
        self._types: dict[str, EntityType] = {}
        self._written_at: dict[str, dict[str, float]] = {}  # type name -> entity id -> logical time
        self._cache: dict[EntityKey, Any] = {}  # decoded entities (None: not stored)
        self._entity_docs: set[str] = set()
        self._queries: dict[str, Query] = {}
        self._query_refs: dict[str, dict[EntityKey, EntityType]] = {}
        self._positions: dict[str, Positions] = {}
        self._referrers: dict[EntityKey, str | set[str]] = {}  # a query hash, or a set of them
        self._doc_refcount: dict[str, int] = {}
        self._doc_gc_time: dict[str, float] = {}
        self._gc_timers: dict[str, TimerHandle] = {}
        self._ref_listeners: list[Callable[[str, bool], None]] = []
        self.skipped_stale = 0  # entity writes ignored by the monotonic-read rule
        self._ticks = 0  # a logical clock ordering fetch starts and local edits in this process
        replica.on_change(self._on_change)
        replica.on_unload(self._on_unload)

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

    def tick(self) -> float:
        """A logical time: call when a fetch starts (its ``started_at``) or a local edit is made.
        Strictly increasing, so "started before" is exact even on a clock that does not move."""
        self._ticks += 1
        return float(self._ticks)

    # -- reading entities --------------------------------------------------------------------
    def get(self, entity_type: EntityType, eid: str | int) -> Any:
        """The stored entity (relations as ids), or None."""
        return self._read_entity(entity_type, str(eid))

    def _read_entity(self, t: EntityType, eid: str, misses: dict[str, int] | None = None) -> Any:
        doc_id = t.doc_id(eid)
        key = (doc_id, eid)
        in_batch = self.replica.in_batch
        if not in_batch and key in self._cache:
            return self._cache[key]
        if not self.replica.has_doc(doc_id):
            return None
        self._entity_docs.add(doc_id)
        if misses is not None and not in_batch:
            n = misses[doc_id] = misses.get(doc_id, 0) + 1
            if n == _BULK_AFTER:
                self._load_doc(doc_id)
                if key in self._cache:
                    return self._cache[key]
        value = self.replica.read_path(doc_id, (eid,))
        value = None if value is MISSING else value
        if not in_batch:
            self._cache[key] = value
        return value

    def _load_doc(self, doc_id: str) -> None:
        """Decode a whole entity document in one pass and cache every entity in it."""
        root = self.replica.raw(doc_id, ())
        if root is MISSING:
            return
        for eid, value in decode(root).items():
            self._cache[(doc_id, eid)] = value

    def _on_change(self, doc_id: str, paths: list[tuple[Any, ...]], origin: Origin) -> None:
        if doc_id not in self._entity_docs:
            return
        changed: set[EntityKey] = set()
        for path in paths:
            if not path:
                changed.update(k for k in self._cache if k[0] == doc_id)
                changed.update(k for k in self._referrers if k[0] == doc_id)
            else:
                changed.add((doc_id, str(path[0])))
        for key in changed:
            self._cache.pop(key, None)
        affected: dict[str, set[EntityKey]] = {}
        for key in changed:
            holders = self._referrers.get(key)
            if holders is None:
                continue
            for qhash in (holders,) if isinstance(holders, str) else holders:
                affected.setdefault(qhash, set()).add(key)
        for qhash, keys in affected.items():
            query = self._queries.get(qhash)
            if query is not None:
                query._on_entities_changed(keys)

    def _on_unload(self, doc_id: str) -> None:
        if doc_id in self._entity_docs:
            self._entity_docs.discard(doc_id)
            for key in [k for k in self._cache if k[0] == doc_id]:
                del self._cache[key]

    # -- writing entities --------------------------------------------------------------------
    def write(self, entity_type: EntityType, obj: Mapping[str, Any], *, origin: Origin = LOCAL,
              started_at: float | None = None) -> bool:
        """Store one entity (its relations normalized too). Returns False when every entity
        write was skipped by the monotonic-read rule or changed nothing."""
        found: list[tuple[EntityType, str, dict[str, Any]]] = []
        normalize(obj, entity_type, found)
        return self._write_entities(found, origin, started_at) > 0

    def update(self, entity_type: EntityType, eid: str | int, changes: Mapping[str, Any], *,
               origin: Origin = LOCAL) -> Any:
        """Merge ``changes`` into a stored entity (a local edit: no version check; a fetch that
        started before it will not overwrite it). Every query that references it is notified.
        Returns the new entity."""
        sid = str(eid)
        current = self._read_entity(entity_type, sid)
        if current is None:
            raise KeyError(f"no {entity_type.name} {sid!r} is stored")
        new = {**current, **changes}
        self._written_at.setdefault(entity_type.name, {})[sid] = self.tick()
        self.replica.write_path(entity_type.doc_id(sid), (sid,), new, depth=entity_type.depth, origin=origin)
        return new

    def _accept(self, t: EntityType, eid: str, ent: dict[str, Any], started_at: float | None) -> bool:
        """The monotonic-read rule (see the module docs)."""
        if t.version is not None:
            current = self._read_entity(t, eid)
            if isinstance(current, dict):
                incoming, stored = t.version_of(ent), t.version_of(current)
                if not is_newer_or_same(incoming, stored):
                    return False
                last = self._written_at.get(t.name, {}).get(eid)
                if incoming == stored and started_at is not None and last is not None and started_at < last:
                    return False  # the same version, fetched before a local edit: keep the edit
            if started_at is None:
                self._written_at.setdefault(t.name, {})[eid] = self.tick()
            return True
        written = self._written_at.setdefault(t.name, {})
        if started_at is None:  # a local write: a fetch already in flight must not undo it
            written[eid] = self.tick()
            return True
        last = written.get(eid)
        if last is not None and started_at < last:
            return False
        written[eid] = started_at
        return True

    def _write_entities(self, found: list[tuple[EntityType, str, dict[str, Any]]], origin: Origin,
                        started_at: float | None, slot: tuple[Sequence[Any], Any] | None = None) -> int:
        """Write entities grouped by document (one transaction per document, a fresh document
        without any diffing) and, with ``slot``, a query's ids, all in one replica batch."""
        groups: dict[tuple[str, int | None], dict[str, dict[str, Any]]] = {}
        for t, eid, ent in found:
            if not self._accept(t, eid, ent, started_at):
                self.skipped_stale += 1
                continue
            doc_id = t.doc_id(eid)
            self._entity_docs.add(doc_id)
            groups.setdefault((doc_id, t.depth), {})[eid] = ent
        changed = 0
        with self.replica.batch(origin=origin):
            for (doc_id, depth), items in groups.items():
                changed += self.replica.write_many(doc_id, items, depth=depth, origin=origin)
            if slot is not None:
                self.replica.write(slot[0], slot[1], origin=origin)
        # The batch has flushed (and invalidated what changed): remember what was just written.
        for (doc_id, _depth), items in groups.items():
            for eid, ent in items.items():
                if all(type(v) in _SCALARS for v in ent.values()):
                    self._cache[(doc_id, eid)] = ent
        return changed

    # -- queries -----------------------------------------------------------------------------
    def write_query(self, query: Query, data: Any, *, origin: Origin, started_at: float | None = None) -> None:
        """Write a normalized query's result: entities to their documents, ids to the slot."""
        found: list[tuple[EntityType, str, dict[str, Any]]] = []
        stored = normalize(data, query.options.normalize, found)
        self._write_entities(found, origin, started_at, slot=(query.query_key, stored))

    def read_query(self, query: Query) -> Any:
        """The denormalized data of ``query`` (MISSING when it has none); refreshes the index
        of the entities it references and where they sit."""
        stored = self.replica.read(query.query_key)
        if stored is MISSING:
            self._set_refs(query, {}, None)
            return MISSING
        refs: dict[EntityKey, EntityType] = {}
        positions: Positions = {}
        misses: dict[str, int] = {}
        cache = self._cache
        in_batch = self.replica.in_batch

        def read(t: EntityType, eid: str) -> Any:
            if not in_batch:
                hit = cache.get((t.doc_id(eid), eid), _MISS)
                if hit is not _MISS:
                    return hit
            return self._read_entity(t, eid, misses)

        value = denormalize(stored, query.options.normalize, read, refs, positions)
        self._set_refs(query, refs, positions)
        return value

    def patched(self, query: Query, keys: set[EntityKey]) -> Any:
        """The query's previous result with the changed entities patched in, or MISSING when
        it must be rebuilt (an entity went away, or has relations)."""
        positions = self._positions.get(query.query_hash)
        refs = self._query_refs.get(query.query_hash)
        data = query.state.data
        if positions is None or refs is None or data is MISSING:
            return MISSING
        changes: list[tuple[tuple[Any, ...], Any]] = []
        for key in keys:
            t = refs.get(key)
            paths = paths_of(positions, key)
            if t is None or t.relations or not paths:
                return MISSING  # not in the result yet (it was missing when built): rebuild
            value = self._read_entity(t, key[1])
            if value is None:
                return MISSING
            changes.extend((path, value) for path in paths)
        return patch(data, changes)

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
        self._set_refs(query, {}, None)
        self._query_refs.pop(query.query_hash, None)
        self._queries.pop(query.query_hash, None)

    def _set_refs(self, query: Query, refs: dict[EntityKey, EntityType], positions: Positions | None) -> None:
        qhash = query.query_hash
        if positions is None:
            self._positions.pop(qhash, None)
        else:
            self._positions[qhash] = positions
        old = self._query_refs.get(qhash, {})
        if refs.keys() == old.keys():
            self._query_refs[qhash] = refs
            return
        if refs:
            self._queries[qhash] = query
        referrers = self._referrers
        gone_docs: dict[str, int] = {}
        for key in old.keys() - refs.keys():
            holders = referrers.get(key)
            if holders == qhash:
                del referrers[key]
            elif isinstance(holders, set):
                holders.discard(qhash)
                if len(holders) == 1:
                    referrers[key] = next(iter(holders))
            gone_docs[key[0]] = gone_docs.get(key[0], 0) + 1
        new_docs: dict[str, int] = {}
        for key in refs.keys() - old.keys():
            self._entity_docs.add(key[0])  # watch it even before it exists (a peer may create it)
            holders = referrers.get(key)
            if holders is None:
                referrers[key] = qhash  # one referrer (the common case) is kept without a set
            elif isinstance(holders, set):
                holders.add(qhash)
            elif holders != qhash:
                referrers[key] = {holders, qhash}
            if key[0] not in new_docs:
                self._doc_gc_time.setdefault(key[0], refs[key].gc_time)
            new_docs[key[0]] = new_docs.get(key[0], 0) + 1
        for doc_id, n in new_docs.items():
            self._incref(doc_id, n)
        for doc_id, n in gone_docs.items():
            self._decref(doc_id, self._doc_gc_time.get(doc_id, 300.0), n)
        self._query_refs[qhash] = refs

    # -- garbage collection ------------------------------------------------------------------
    def on_reference(self, callback: Callable[[str, bool], None]) -> Callable[[], None]:
        """Call ``callback(doc_id, True)`` when an entity document gains its first query
        reference and ``callback(doc_id, False)`` when it is collected (for sync bindings)."""
        self._ref_listeners.append(callback)
        return lambda: self._ref_listeners.remove(callback) if callback in self._ref_listeners else None

    def _incref(self, doc_id: str, count: int = 1) -> None:
        before = self._doc_refcount.get(doc_id, 0)
        self._doc_refcount[doc_id] = before + count
        timer = self._gc_timers.pop(doc_id, None)
        if timer is not None:
            timer.cancel()
        if before == 0:  # listeners are idempotent: a re-reference during the gc window tells them too
            for cb in list(self._ref_listeners):
                cb(doc_id, True)

    def _decref(self, doc_id: str, gc_time: float, count: int = 1) -> None:
        n = self._doc_refcount.get(doc_id, 0) - count
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

    def referenced_docs(self) -> dict[str, int]:
        """Entity documents and how many entity references each has (for tests and tools)."""
        return dict(self._doc_refcount)
