"""The fetch-path writer: how a query function's result reaches the document.

The query layer writes fetched data through a writer injected into its cache
(:meth:`~crdtsync.query.query_cache.QueryCache.set_fetch_writer`); on its own it writes the data
as is (:func:`~crdtsync.query.query.write_plain`). The client injects this one, which knows
about pending optimistic edits: every field that has one keeps the user's value (a rebase), so
the edit never flickers, and the fetched value becomes what a rollback goes back to. A
normalized query (its entities are written by the entity store) is rebased in the same
transaction as its write.
"""

from __future__ import annotations

from typing import Any

from ..mutations.overlay import Overlay
from ..normalize.store import EntityStore
from ..origins import FETCH
from ..query.query import Query


class RebasingFetchWriter:
    def __init__(self, overlay: Overlay, entities: EntityStore) -> None:
        self._overlay = overlay
        self._entities = entities

    def __call__(self, query: Query, data: Any) -> None:
        overlay = self._overlay
        if not overlay.pending_leaves():
            query.write_data(data, origin=FETCH)
        elif query.options.normalize is None:
            query.write_data(overlay.rebase_fetched(query.route, data), origin=FETCH)
        else:
            with self._entities.capturing() as fetched, overlay.restoring(fetched):
                query.write_data(data, origin=FETCH)
