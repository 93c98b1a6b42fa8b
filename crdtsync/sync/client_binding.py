"""Bind a :class:`~crdtsync.client.QueryClient` to a :class:`SyncProvider`: selective
subscription driven by the query cache.

- A query's document is subscribed when the query gets its first observer, and released when
  the query leaves the cache (its ``gc_time`` after the last observer left), so a document is
  synced exactly while something on screen, or about to come back, needs it.
- Entity documents of normalized queries are subscribed while any query references one of
  their entities, and released when they are collected.
- Anything else (a pending mutation's document, a background job) can hold a document with
  :meth:`ClientSync.retain`.

Remote updates arrive through the provider into the replica, whose watchers notify exactly the
observers of the affected queries.

::

    provider = SyncProvider(client.replica, "ws://127.0.0.1:8765/v1")
    binding = bind_client(client, provider)
    async with provider:
        ...
    binding.close()
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..query.events import CacheEvent, ObserverAdded, QueryRemoved
from .provider import SyncProvider

if TYPE_CHECKING:
    from ..client import QueryClient


class ClientSync:
    """The binding returned by :func:`bind_client`."""

    def __init__(self, client: QueryClient, provider: SyncProvider):
        if provider.replica is not client.replica:
            raise ValueError("the provider must sync the client's own replica")
        self.client = client
        self.provider = provider
        self._queries: dict[str, Callable[[], None]] = {}
        self._entity_docs: dict[str, Callable[[], None]] = {}
        self._stops = [
            client.query_cache.subscribe(self._on_cache_event),
            client.entities.on_reference(self._on_entity_reference),
        ]
        for query in client.query_cache.get_all():
            if query.observers:
                self._queries[query.query_hash] = provider.retain(query.route.doc_id)
        for doc_id in client.entities.referenced_docs():
            self._entity_docs[doc_id] = provider.retain(doc_id)

    def retain(self, doc_id: str) -> Callable[[], None]:
        """Keep ``doc_id`` subscribed until the returned function is called."""
        return self.provider.retain(doc_id)

    def _on_cache_event(self, event: CacheEvent) -> None:
        if isinstance(event, ObserverAdded):
            qhash = event.query.query_hash
            if qhash not in self._queries:
                self._queries[qhash] = self.provider.retain(event.query.route.doc_id)
        elif isinstance(event, QueryRemoved):
            release = self._queries.pop(event.query.query_hash, None)
            if release is not None:
                release()

    def _on_entity_reference(self, doc_id: str, referenced: bool) -> None:
        if referenced:
            if doc_id not in self._entity_docs:
                self._entity_docs[doc_id] = self.provider.retain(doc_id)
        else:
            release = self._entity_docs.pop(doc_id, None)
            if release is not None:
                release()

    def close(self) -> None:
        """Stop following the cache and release every document this binding holds."""
        for stop in self._stops:
            stop()
        for release in [*self._queries.values(), *self._entity_docs.values()]:
            release()
        self._queries.clear()
        self._entity_docs.clear()


def bind_client(client: QueryClient, provider: SyncProvider) -> ClientSync:
    """Subscribe ``provider`` to exactly the documents ``client``'s queries need."""
    return ClientSync(client, provider)
