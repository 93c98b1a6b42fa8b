"""crdtsync: a TanStack-Query-style server-state cache for asyncio whose data lives in CRDT documents."""

from .cache import (
    INFINITY,
    Cascades,
    FocusManager,
    KeyFamily,
    NetworkMode,
    OnlineManager,
    QueryCache,
    QueryClient,
    QueryFilters,
    QueryFunctionContext,
    QueryObserver,
    QueryObserverResult,
    QueryState,
)
from .clock import Clock, FakeClock, SystemClock
from .errors import ClientError, CrdtsyncError
from .keys import QueryKey, hash_key, partial_match_key
from .origins import Origin, OriginKind
from .replica import Replica, Route, Router
from .values import MISSING

__version__ = "0.1.0"

__all__ = [
    "INFINITY",
    "MISSING",
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
