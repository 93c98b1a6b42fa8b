"""The query layer: TanStack Query's model (cache, queries, observers) over a Replica.

The client that composes it with the mutation layer is :class:`crdtsync.client.QueryClient`
(also ``crdtsync.QueryClient``).
"""

from ..core.managers import FocusManager, OnlineManager
from ..core.notify import NotifyManager
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
from .filters import QueryFilters, match_query
from .key_factory import Cascades, KeyFamily
from .observer import QueryObserver, QueryObserverResult
from .options import INFINITY, InfiniteOptions, NetworkMode, ObserverOptions, QueryFunctionContext, QueryOptions
from .query import Query
from .query_cache import QueryCache
from .state import QueryState

__all__ = [
    "INFINITY",
    "CacheEvent",
    "Cascades",
    "FocusManager",
    "InfiniteOptions",
    "KeyFamily",
    "LogEntry",
    "NetworkMode",
    "NotifyManager",
    "ObserverAdded",
    "ObserverOptions",
    "ObserverRemoved",
    "ObserverResultsUpdated",
    "OnlineManager",
    "Query",
    "QueryAdded",
    "QueryCache",
    "QueryFilters",
    "QueryFunctionContext",
    "QueryObserver",
    "QueryObserverResult",
    "QueryOptions",
    "QueryRemoved",
    "QueryState",
    "QueryUpdated",
    "match_query",
]
