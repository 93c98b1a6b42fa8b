"""The query cache: query hash -> :class:`Query`, with typed events.

``build`` finds or creates the query for a key; ``find`` and ``find_all`` apply
:class:`QueryFilters`. Listeners added with ``subscribe`` receive :data:`CacheEvent` s.
``enable_event_log`` keeps a bounded log of every event for debugging and monitoring tools.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..core.subscribable import Subscribable
from ..keys import hash_key
from .events import (
    CacheEvent,
    LogEntry,
    ObserverAdded,
    ObserverRemoved,
    ObserverResultsUpdated,
    QueryAdded,
    QueryRemoved,
    QueryUpdated,
)
from .filters import QueryFilters, as_filters, match_query
from .options import QueryOptions
from .query import FetchWriter, Query, write_plain
from .state import Action

if TYPE_CHECKING:
    from ..client import QueryClient
    from .observer import QueryObserver


class QueryCache(Subscribable[Callable[[CacheEvent], None]]):
    def __init__(self) -> None:
        super().__init__()
        self._queries: dict[str, Query] = {}
        self._log: collections.deque[LogEntry] | None = None
        self._client: QueryClient | None = None
        self._fetch_writer: FetchWriter = write_plain

    def set_fetch_writer(self, writer: FetchWriter) -> None:
        """How the queries built from now on write a fetch result (the client injects one that
        rebases pending optimistic edits; without it, results are written as they came)."""
        self._fetch_writer = writer

    # -- building and finding ----------------------------------------------------------------
    def build(self, client: QueryClient, options: QueryOptions) -> Query:
        qhash = hash_key(options.query_key)
        query = self._queries.get(qhash)
        if query is None:
            self._client = client
            query = Query(client, options, qhash, fetch_writer=self._fetch_writer)
            self._queries[qhash] = query
            self._emit(QueryAdded(query))
            query.schedule_gc()  # collected after gc_time unless an observer comes (as TanStack)
        return query

    def get(self, query_hash: str) -> Query | None:
        return self._queries.get(query_hash)

    def get_all(self) -> list[Query]:
        return list(self._queries.values())

    def find(self, query_key: Sequence[Any], *, exact: bool = True) -> Query | None:
        if exact:
            return self._queries.get(hash_key(query_key))
        found = self.find_all(QueryFilters(query_key=tuple(query_key)))
        return found[0] if found else None

    def find_all(self, filters: QueryFilters | Sequence[Any] | None = None, **kwargs: Any) -> list[Query]:
        f = as_filters(filters, **kwargs)
        if f.exact and f.query_key is not None:
            q = self._queries.get(hash_key(f.query_key))
            return [q] if q is not None and match_query(f, q) else []
        return [q for q in self._queries.values() if match_query(f, q)]

    def remove(self, query: Query) -> None:
        if self._queries.get(query.query_hash) is query:
            del self._queries[query.query_hash]
            query.destroy()
            self._emit(QueryRemoved(query))

    def clear(self) -> None:
        for q in list(self._queries.values()):
            self.remove(q)

    def __len__(self) -> int:
        return len(self._queries)

    # -- events ------------------------------------------------------------------------------
    def enable_event_log(self, maxlen: int = 1000) -> None:
        """Record every cache event in a bounded log (``event_log()``)."""
        self._log = collections.deque(maxlen=maxlen)

    def event_log(self) -> list[LogEntry]:
        return list(self._log) if self._log is not None else []

    def _emit(self, event: CacheEvent) -> None:
        if self._log is not None:
            at = self._client.clock.now() if self._client is not None else 0.0
            detail = type(event.action).__name__ if isinstance(event, QueryUpdated) else ""
            self._log.append(LogEntry(at, type(event).__name__, event.query.query_hash, detail))
        for listener in list(self._listeners):
            listener(event)

    def _query_updated(self, query: Query, action: Action) -> None:
        self._emit(QueryUpdated(query, action))

    def _observer_added(self, query: Query, observer: QueryObserver) -> None:
        self._emit(ObserverAdded(query, observer))

    def _observer_removed(self, query: Query, observer: QueryObserver) -> None:
        self._emit(ObserverRemoved(query, observer))

    def _observer_results_updated(self, query: Query, observer: QueryObserver) -> None:
        if self._listeners or self._log is not None:
            self._emit(ObserverResultsUpdated(query, observer))
