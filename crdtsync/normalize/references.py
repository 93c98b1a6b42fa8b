"""ReferenceIndex: which queries reference which entities, and where in their results.

The entity store keeps one index, entity -> the queries that reference it, so an edit to one
entity (local, fetched or remote) reaches exactly those queries. Each query's
:class:`~crdtsync.normalize.shape.Refs` (the entities its last result references and their
positions) is kept too, for patching. Per document, an entity maps to one query hash (the
common case, kept without a set) or a set of them. The index tells the
:class:`~crdtsync.normalize.doc_gc.DocCollector` how many references each document gains and
loses.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

from .doc_gc import DocCollector
from .referrer import EntityReferrer
from .shape import EntityKey, Refs


class ReferenceIndex:
    def __init__(self, collector: DocCollector, watch_doc: Callable[[str], None]) -> None:
        self.collector = collector
        self._watch_doc = watch_doc
        self._queries: dict[str, EntityReferrer] = {}
        self._refs: dict[str, Refs] = {}
        # Which queries reference each entity: a query hash, or a set of them (rarely needed).
        self._referrers: dict[str, dict[str, str | set[str]]] = {}

    def refs_of(self, query_hash: str) -> Refs | None:
        return self._refs.get(query_hash)

    def holders(self, doc_id: str) -> dict[str, str | set[str]] | None:
        """Entity id -> the query hash(es) referencing it, for the entities of ``doc_id``."""
        return self._referrers.get(doc_id)

    def notify(self, doc_id: str, holders: dict[str, str | set[str]], changed: list[str] | set[str]) -> None:
        """Tell every query referencing one of the ``changed`` entities of ``doc_id`` (each
        query once, with all its changed keys)."""
        affected: dict[str, set[EntityKey]] = {}
        for eid in changed:
            held = holders.get(eid)
            if held is None:
                continue
            for qhash in (held,) if isinstance(held, str) else held:
                affected.setdefault(qhash, set()).add((doc_id, eid))
        for qhash, keys in affected.items():
            query = self._queries.get(qhash)
            if query is not None:
                query.entities_changed(keys)

    def release(self, query: EntityReferrer) -> None:
        """Forget ``query`` (it left the cache)."""
        self.set(query, None)
        self._queries.pop(query.query_hash, None)

    def set(self, query: EntityReferrer, refs: Refs | None) -> None:
        """``query`` now references what ``refs`` lists (None: nothing any more)."""
        qhash = query.query_hash
        old = self._refs.get(qhash)
        if refs is None:
            self._refs.pop(qhash, None)
        else:
            self._refs[qhash] = refs
            self._queries[qhash] = query
        if old is not None and refs is not None and old.same_keys(refs):
            refs.drop_keysets()
            return
        new = refs.by_doc() if refs is not None else {}
        old_by = old.by_doc() if old is not None else {}
        referrers = self._referrers
        for doc_id in [*new, *(d for d in old_by if d not in new)]:
            now, before = new.get(doc_id), old_by.get(doc_id)
            per = referrers.get(doc_id)
            if now and not before:
                self._watch_doc(doc_id)  # watch it even before it exists (a peer may create it)
                self.collector.note_gc_time(doc_id, next(iter(now.values())).gc_time)
            if now and not before and per is None:
                # Nobody referenced this document: the map built for the diff becomes its index.
                for eid in now:
                    now[eid] = qhash  # type: ignore[assignment]
                referrers[doc_id] = cast("dict[str, str | set[str]]", now)
                self.collector.incref(doc_id, len(now))
                continue
            added = (now.keys() - before.keys() if before else now.keys()) if now else ()
            gone = (before.keys() - now.keys() if now else before.keys()) if before else ()
            if added:
                if per is None:
                    per = referrers[doc_id] = {}
                for eid in added:
                    holders = per.get(eid)
                    if holders is None:
                        per[eid] = qhash  # one referrer (the common case) is kept without a set
                    elif isinstance(holders, set):
                        holders.add(qhash)
                    elif holders != qhash:
                        per[eid] = {holders, qhash}
                self.collector.incref(doc_id, len(added))
            if gone:
                for eid in gone:
                    holders = per.get(eid) if per is not None else None
                    if holders == qhash:
                        del per[eid]  # type: ignore[union-attr]
                    elif isinstance(holders, set):
                        holders.discard(qhash)
                        if len(holders) == 1:
                            per[eid] = next(iter(holders))  # type: ignore[index]
                if per is not None and not per:
                    del referrers[doc_id]
                self.collector.decref(doc_id, len(gone))
