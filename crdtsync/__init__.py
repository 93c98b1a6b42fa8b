"""crdtsync: a TanStack-Query-style server-state cache for asyncio whose data lives in CRDT documents.

Start with :class:`QueryClient` (docs/queries.md). Mutations are methods of the client
(``client.mutate``; types in :mod:`crdtsync.mutations`); normalized entities are declared with
:class:`EntityType` (:mod:`crdtsync.normalize`); :class:`SyncProvider` and :func:`bind_client`
connect a client to a relay (:mod:`crdtsync.sync`); persistence and cross-process sync are in
:mod:`crdtsync.offline`; the relay service is ``crdtsync relay`` (:mod:`crdtsync.relay`); test
authors use :mod:`crdtsync.testing`.
"""

from .client import QueryClient
from .clock import Clock, FakeClock, SystemClock
from .errors import ClientError, CrdtsyncError
from .keys import QueryKey, hash_key, partial_match_key
from .mutations import MutationObserver, MutationObserverResult, MutationState, OptimisticTx
from .normalize import ChangeFeed, EntityType
from .origins import Origin, OriginKind
from .query import (
    INFINITY,
    Cascades,
    FocusManager,
    KeyFamily,
    NetworkMode,
    OnlineManager,
    QueryCache,
    QueryFilters,
    QueryFunctionContext,
    QueryObserver,
    QueryObserverResult,
    QueryState,
)
from .replica import Replica, Route, Router
from .sync import SyncProvider, bind_client
from .values import MISSING

__version__ = "0.1.0"

__all__ = [
    "INFINITY",
    "MISSING",
    "ChangeFeed",
    "EntityType",
    "MutationObserver",
    "MutationObserverResult",
    "MutationState",
    "OptimisticTx",
    "SyncProvider",
    "bind_client",
    "Cascades",
    "Clock",
    "FakeClock",
    "FocusManager",
    "KeyFamily",
    "NetworkMode",
    "OnlineManager",
    "QueryCache",
    "QueryClient",
    "QueryFilters",
    "QueryFunctionContext",
    "QueryObserver",
    "QueryObserverResult",
    "QueryState",
    "SystemClock",
    "ClientError",
    "CrdtsyncError",
    "Origin",
    "OriginKind",
    "QueryKey",
    "Replica",
    "Route",
    "Router",
    "__version__",
    "hash_key",
    "partial_match_key",
]
