"""EntityStore: entities stored once, referenced by queries, versioned, garbage-collected.

Every :class:`~crdtsync.client.QueryClient` has one, as ``client.entities``. A query
with a ``normalize`` shape writes its result through it: each entity goes to its entity
document (``entity_type.doc_id(id)``, path ``(id,)``) and the query's own slot keeps only ids.
Reading denormalizes.

Change routing: the store keeps one index, entity -> the queries that reference it
(``store.references``, a :class:`~crdtsync.normalize.references.ReferenceIndex`), fed by
``Replica.on_change`` (which reports the changed paths of every transaction before any
watcher runs). An edit to one entity (local, fetched or remote) therefore reaches exactly the
queries that reference it, and each of them patches the entity into its previous result
where it sits (a list of entities keeps its ids in result order, other references their
paths; only the containers on those paths are copied), so the work is proportional to the
observers affected (and, for one list, to a shallow copy of it), not to the cache.

Loading fast (see docs/normalization.md, "Large datasets"): what a write accepted is cached
*as written*, the very objects the query function returned, when they read back exactly
(``encode_checked`` returns them unchanged). The first ``on_change`` reported for a document
after the store's own write batch is that write (``_own``); any later change invalidates as
usual (``store.entity_cache``, an :class:`~crdtsync.normalize.entity_cache.EntityCache`).
The ids a fetch just wrote serve the query's next read (``_fresh_slots``) unless its
document changed since. Results are therefore shared with the caller: read-only, as in
TanStack Query.

Monotonic reads: with a ``version`` field, an incoming entity whose version is older than the
stored one is ignored, whatever order responses arrive in (and one with the *same* version
from a fetch that started before a local edit of it does not undo the edit). Without one, the
rule is by fetch start: a response to a fetch that *started* before the fetch that last wrote
the entity, or before the last local edit of it, does not overwrite it (a slow, older request
never clobbers a newer answer or a newer edit). "Before" is a logical clock of this process
(:meth:`EntityStore.tick`). Local edits (``update``) always apply. The rule is
:class:`~crdtsync.normalize.freshness.Freshness` (``store.freshness``).

Garbage collection: when no query in the cache references any entity of a document for the
entity type's ``gc_time``, the document is unloaded from memory (its peers and stores keep it).
With ``partition="entity"`` that is exactly "unreferenced entities are collected"; with one
document per type, the document goes when none of its entities is referenced. The counts and
timers are :class:`~crdtsync.normalize.doc_gc.DocCollector` (``store.collector``).

Queries are seen through :class:`~crdtsync.normalize.referrer.EntityReferrer`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import InvalidValueError
from ..origins import LOCAL, Origin
from ..values import MISSING, encode_checked
from .doc_gc import DocCollector
from .entity import EntityType
from .entity_cache import EntityCache
from .freshness import Freshness
from .references import ReferenceIndex
from .referrer import EntityReferrer
from .shape import EntityKey, Found, Refs, check_shape, denormalize, normalize, patch, paths_of

if TYPE_CHECKING:
    from ..replica import Replica

_MANY_KEYS = 16  # changed entities of one list in one patch above which its ids are indexed


class EntityStore:
    def __init__(self, replica: Replica, clock: Any):
        self.replica = replica
        self.clock = clock
        self._types: dict[str, EntityType] = {}
        self.entity_cache = EntityCache(replica)  # decoded entities, read through
        self._read_entity = self.entity_cache.read
        self.collector = DocCollector(clock, replica.unload)  # entity documents' refcounts and gc
        self.references = ReferenceIndex(self.collector, self.entity_cache.entity_docs.add)  # entity -> its queries
        # Entities this store is writing (document -> (id -> value, id -> encoded value of those
        # that do not read back as they are)): the first change reported for such a document after
        # the write is the write itself, so each exact value is cached as written.
        self._own: dict[str, tuple[dict[str, Any], dict[str, Any]]] | None = None
        # The same for a query's slot: (document, query hash, the ids written). Once the write is
        # reported, the ids are kept in _fresh_slots until the query reads them or the document
        # changes again, so the read right after a fetch does not decode the slot back.
        self._own_slot: tuple[str, str, Any] | None = None
        self._fresh_slots: dict[str, tuple[str, Any]] = {}
        # While capturing(): every entity a write accepted, by document then id (see capturing).
        self._captured: dict[str, dict[str, Any]] | None = None
        self.skipped_stale = 0  # entity writes ignored by the monotonic-read rule
        self.freshness = Freshness()  # the monotonic-read rule and its logical clock
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
        return self.freshness.tick()

    @contextlib.contextmanager
    def capturing(self) -> Iterator[Callable[[str, tuple[str, ...]], Any]]:
        """Within the block, remember every entity the writes accept (also those equal to what
        is stored, which write nothing), and yield ``value_at(doc_id, path)``: the value written
        at ``path`` of ``doc_id`` (``(id,)`` is the entity, ``(id, field)`` a field), or MISSING.
        The mutation layer uses it to rebase pending edits under a fetch that confirms them."""
        outer = self._captured
        captured: dict[str, dict[str, Any]] = {}
        self._captured = captured

        def value_at(doc_id: str, path: tuple[str, ...]) -> Any:
            node: Any = captured.get(doc_id, {}).get(path[0], MISSING) if path else MISSING
            for seg in path[1:]:
                node = node.get(seg, MISSING) if isinstance(node, dict) else MISSING
            return node

        try:
            yield value_at
        finally:
            self._captured = outer

    # -- reading entities --------------------------------------------------------------------
    def get(self, entity_type: EntityType, eid: str | int) -> Any:
        """The stored entity (relations as ids), or None."""
        return self._read_entity(entity_type, str(eid))

    def _slot_changed(self, doc_id: str) -> None:
        arm = self._own_slot
        if arm is not None and arm[0] == doc_id:  # this store's own write of a query's ids
            self._own_slot = None
            self._fresh_slots[arm[1]] = (doc_id, arm[2])
            return
        for qhash in [q for q, (d, _) in self._fresh_slots.items() if d == doc_id]:
            del self._fresh_slots[qhash]

    def _on_change(self, doc_id: str, paths: list[tuple[Any, ...]], origin: Origin) -> None:
        if self._fresh_slots or self._own_slot is not None:
            self._slot_changed(doc_id)
        own = self._own.pop(doc_id, None) if self._own is not None else None
        if doc_id not in self.entity_cache.entity_docs:
            return
        referrers = self.references.holders(doc_id)
        changed = self.entity_cache.apply_change(doc_id, paths, own, referrers)
        if referrers:
            self.references.notify(doc_id, referrers, changed)

    def _on_unload(self, doc_id: str) -> None:
        if self._fresh_slots:
            self._slot_changed(doc_id)
        self.entity_cache.unload(doc_id)

    # -- writing entities --------------------------------------------------------------------
    def write(self, entity_type: EntityType, obj: Mapping[str, Any], *, origin: Origin = LOCAL,
              started_at: float | None = None) -> bool:
        """Store one entity (its relations normalized too). Returns False when every entity
        write was skipped by the monotonic-read rule or changed nothing."""
        found = Found()
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
        self.freshness.local_edit(entity_type, sid)
        self.replica.write_path(entity_type.doc_id(sid), (sid,), new, depth=entity_type.depth, origin=origin)
        return new

    def _write_entities(self, found: Found, origin: Origin,
                        started_at: float | None, slot: tuple[Sequence[Any], Any] | None = None,
                        query_hash: str | None = None) -> int:
        """Write entities grouped by document (one transaction per document, a fresh document
        without any diffing) and, with ``slot``, a query's ids, all in one replica batch.
        Everything is validated before anything is written."""
        groups: dict[tuple[str, int | None], dict[str, dict[str, Any]]] = {}
        # document -> id -> encode_checked(entity), for the entities that do not read back exactly
        # as they are (rare: a tuple, an integral float...); the others are written and cached as is.
        inexact: dict[str, dict[str, Any]] = {}
        fresh: dict[str, bool] = {}  # document -> not loaded (nothing stored to compare with)
        has_doc = self.replica.has_doc
        accept, read = self.freshness.accept, self._read_entity
        run_type: EntityType | None = None  # entities of one type in one document come in runs:
        group: dict[str, dict[str, Any]] = {}  # what the last one resolved is reused for the next
        odd: dict[str, Any] = {}
        check = True
        for t, eid, ent in found:
            enc = encode_checked(ent)  # raises InvalidValueError before anything is written
            if t is not run_type:
                doc_id = t.fixed_doc or t.doc_id(eid)
                is_fresh = fresh.get(doc_id)
                if is_fresh is None:
                    is_fresh = fresh[doc_id] = not has_doc(doc_id)
                # A versioned fetch into a document not loaded yet has nothing to compare with.
                check = not (is_fresh and t.version is not None and started_at is not None)
                key = (doc_id, t.depth)
                group = groups.setdefault(key, {})
                odd = inexact.setdefault(doc_id, {})
                run_type = t if t.fixed_doc is not None else None  # a per-id document: resolve each time
            if check and not accept(t, eid, ent, started_at, fresh[key[0]], read):
                self.skipped_stale += 1
                continue
            group[eid] = ent
            if enc is not ent:
                odd[eid] = enc
            elif odd:
                odd.pop(eid, None)  # the same entity twice in one response: the last is written
        for doc_id, _depth in groups:
            self.entity_cache.entity_docs.add(doc_id)
        if self._captured is not None:
            for (doc_id, _depth), items in groups.items():
                self._captured.setdefault(doc_id, {}).update(items)
        changed = 0
        outermost = not self.replica.in_batch and not self.replica.flushing
        try:
            with self.replica.batch(origin=origin):
                own: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
                for (doc_id, depth), items in groups.items():
                    n = self.replica.write_many(doc_id, items, depth=depth, origin=origin, encoded=inexact[doc_id])
                    if n:  # only a document that changed reports a change to take as this write
                        own[doc_id] = (items, inexact[doc_id])
                    changed += n
                slot_changed = slot is not None and self.replica.write(slot[0], slot[1], origin=origin)
                if outermost:
                    self._own = own
                    if slot is not None and slot_changed and query_hash is not None \
                            and encode_checked(slot[1]) is slot[1]:
                        self._own_slot = (self.replica.route(slot[0]).doc_id, query_hash, slot[1])
        finally:
            self._own = None
            self._own_slot = None
        return changed

    # -- queries -----------------------------------------------------------------------------
    def write_query(self, query: EntityReferrer, data: Any, *, origin: Origin, started_at: float | None = None) -> None:
        """Write a normalized query's result: entities to their documents, ids to the slot."""
        found = Found()
        stored = normalize(data, query.normalize_shape, found)
        self._write_entities(found, origin, started_at, slot=(query.query_key, stored), query_hash=query.query_hash)

    def read_query(self, query: EntityReferrer) -> Any:
        """The denormalized data of ``query`` (MISSING when it has none); refreshes the index
        of the entities it references and where they sit."""
        in_batch = self.replica.in_batch
        fresh = self._fresh_slots.pop(query.query_hash, None)
        stored = fresh[1] if fresh is not None and not in_batch else self.replica.read(query.query_key)
        if stored is MISSING:
            self.references.set(query, None)
            return MISSING
        refs = Refs()
        misses: dict[str, int] = {}

        def read(t: EntityType, eid: str) -> Any:  # _read_entity looks the cache up first
            return self._read_entity(t, eid, misses)

        # Lists of one document's entities look the cache up directly (no call per entity).
        caches = None if in_batch else self.entity_cache.docs
        value = denormalize(stored, query.normalize_shape, read, refs, caches=caches)
        self.references.set(query, refs)
        return value

    def patched(self, query: EntityReferrer, keys: set[EntityKey]) -> Any:
        """The query's previous result with the changed entities patched in, or MISSING when
        it must be rebuilt (an entity went away, or has relations)."""
        refs = self.references.refs_of(query.query_hash)
        data = query.current_data
        if refs is None or data is MISSING:
            return MISSING
        changes: list[tuple[tuple[Any, ...], Any]] = []
        rest = list(keys) if refs.lists else []  # an entity can also sit in a list of the result
        for key in keys:
            t = refs.keys.get(key)
            if t is None:
                if not refs.lists:
                    return MISSING  # not referenced by this result (any more): rebuild
                continue
            paths = paths_of(refs.positions, key)
            if t.relations or not paths:
                return MISSING  # not in the result yet (it was missing when built): rebuild
            value = self._read_entity(t, key[1])
            if value is None:
                return MISSING
            changes.extend((path, value) for path in paths)
        for lst in refs.lists if rest else ():
            mine = [key for key in rest if lst.doc_of(key[1]) == key[0]]
            if not mine:
                continue
            index = {eid: i for i, eid in enumerate(lst.present)} if len(mine) > _MANY_KEYS else None
            for key in mine:
                eid = key[1]
                if index is not None:
                    i = index.get(eid, -1)
                else:
                    try:
                        i = lst.present.index(eid)
                    except ValueError:
                        i = -1
                if i < 0:
                    if eid in lst.missing:
                        return MISSING  # a referenced entity appeared: rebuild
                    continue
                value = self._read_entity(lst.type, eid)
                if value is None:
                    return MISSING
                changes.append(((*lst.path, i), value))
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

    def release(self, query: EntityReferrer) -> None:
        """Forget a query's references (it left the cache)."""
        self.references.release(query)
        self._fresh_slots.pop(query.query_hash, None)

    # -- garbage collection (DocCollector) ---------------------------------------------------
    def on_reference(self, callback: Callable[[str, bool], None]) -> Callable[[], None]:
        """Call ``callback(doc_id, True)`` when an entity document gains its first query
        reference and ``callback(doc_id, False)`` when it is collected (for sync bindings)."""
        return self.collector.on_reference(callback)

    def referenced_docs(self) -> dict[str, int]:
        """Entity documents and how many entity references each has (for tests and tools)."""
        return self.collector.referenced_docs()
