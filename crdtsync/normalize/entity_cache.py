"""EntityCache: decoded entities, by document then entity id, read through from the replica.

Reading an entity decodes it once; later reads return the cached object until its document
changes. What the entity store writes is cached *as written* (the very objects the query
function returned, when they read back exactly): the first change reported for a document
after the store's own write is that write (:meth:`EntityCache.apply_change` with ``own``); any
other change invalidates the changed entities. Inside a replica batch nothing is cached (the
document may be mid-write). ``docs`` is the cache itself: ``shape.denormalize`` looks lists of
one document's entities up in it directly.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ..values import MISSING, decode
from .entity import EntityType

if TYPE_CHECKING:
    from ..replica import Replica

_MISS = object()
BULK_AFTER = 256  # cache misses in one document during one read before reading it whole
OwnWrite = tuple[dict[str, Any], dict[str, Any]]  # id -> value written, id -> encoded (inexact ones)


class EntityCache:
    def __init__(self, replica: Replica) -> None:
        self.replica = replica
        # Decoded entities (None: not stored), by document then entity id: no key tuple per entity.
        self.docs: dict[str, dict[str, Any]] = {}
        self.entity_docs: set[str] = set()  # documents whose changes concern entities

    def read(self, t: EntityType, eid: str, misses: dict[str, int] | None = None) -> Any:
        """The stored entity ``eid`` of type ``t`` (None: not stored), from the cache when it
        holds it (never inside a replica batch: the document may be mid-write). ``misses``
        counts cache misses per document during one read: past ``BULK_AFTER`` the whole
        document is decoded at once."""
        doc_id = t.doc_id(eid)
        in_batch = self.replica.in_batch
        cache = self.docs.get(doc_id)
        if not in_batch and cache is not None:
            hit = cache.get(eid, _MISS)
            if hit is not _MISS:
                return hit
        if not self.replica.has_doc(doc_id):
            return None
        self.entity_docs.add(doc_id)
        if misses is not None and not in_batch:
            n = misses[doc_id] = misses.get(doc_id, 0) + 1
            if n == BULK_AFTER:
                cache = self.load_doc(doc_id)
                if eid in cache:
                    return cache[eid]
        value = self.replica.read_path(doc_id, (eid,))
        value = None if value is MISSING else value
        if not in_batch:
            self.docs.setdefault(doc_id, {})[eid] = value
        return value

    def load_doc(self, doc_id: str) -> dict[str, Any]:
        """Decode a whole entity document in one pass and cache every entity in it."""
        cache = self.docs.setdefault(doc_id, {})
        root = self.replica.raw(doc_id, ())
        if root is not MISSING:
            cache.update(decode(root))
        return cache

    def apply_change(self, doc_id: str, paths: list[tuple[Any, ...]], own: OwnWrite | None,
                     holders: Iterable[str] | None) -> Any:
        """A transaction changed ``paths`` of entity document ``doc_id``: cache the store's own
        write (``own``) as written, or drop the changed entities. Returns the changed entity
        ids (a list, or a set when the root itself changed: then every entity known here, in
        ``own`` or among ``holders`` counts as changed)."""
        cache = self.docs.get(doc_id)
        changed: Any
        if all(path for path in paths):
            changed = [path[0] if type(path[0]) is str else str(path[0]) for path in paths]
        else:
            changed = set(cache or ()) | set(holders or ()) | set(own[0] if own else ())
            changed.update(str(path[0]) for path in paths if path)
        if own:
            # This store's own write: cache each entity as written (``own`` holds only those that
            # read back exactly so, the same types all the way down), sparing a read-back.
            if cache is None:
                cache = self.docs.setdefault(doc_id, {})
            written, inexact = own
            for eid in changed:
                value = written.get(eid, _MISS)
                if value is _MISS or (inexact and eid in inexact):
                    cache.pop(eid, None)
                else:
                    cache[eid] = value
        elif cache is not None:
            for eid in changed:
                cache.pop(eid, None)
        return changed

    def unload(self, doc_id: str) -> None:
        """``doc_id`` left the replica."""
        if doc_id in self.entity_docs:
            self.entity_docs.discard(doc_id)
            self.docs.pop(doc_id, None)
