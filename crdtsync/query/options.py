"""Query options, with the same meaning as TanStack Query v5's (snake_case).

Times are in **seconds** (TanStack uses milliseconds). ``INFINITY`` (``math.inf``) means never.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from ..core.network import NetworkMode
from ..core.retry import RetryDelay, RetryOption, is_client_error

if TYPE_CHECKING:
    from .query import Query

INFINITY = math.inf
__all__ = ["INFINITY", "InfiniteOptions", "NetworkMode", "ObserverOptions", "QueryFunctionContext", "QueryOptions",
           "RetryDelay", "RetryOption", "is_client_error", "resolve_stale_time", "resolve_trigger"]


@dataclass(frozen=True, slots=True)
class QueryFunctionContext:
    """What a query function receives."""

    query_key: tuple[Any, ...]
    cancelled: Callable[[], bool]  # True once the fetch was cancelled
    meta: dict[str, Any] | None = None
    page_param: Any = None  # infinite queries: the page to fetch
    direction: Literal["forward", "backward"] | None = None


QueryFn: TypeAlias = Callable[[QueryFunctionContext], Awaitable[Any]]
StaleTime: TypeAlias = "float | Callable[[Query], float]"
RefetchInterval: TypeAlias = "float | Literal[False] | Callable[[Any, Query], float | Literal[False]]"
RefetchTrigger: TypeAlias = "bool | Literal['always'] | Callable[[Query], bool | Literal['always']]"


@dataclass(frozen=True)
class InfiniteOptions:
    """Page parameters of an infinite query (see ``QueryClient.fetch_infinite_query``)."""

    initial_page_param: Any
    get_next_page_param: Callable[[Any, list[Any], Any, list[Any]], Any]
    get_previous_page_param: Callable[[Any, list[Any], Any, list[Any]], Any] | None = None
    max_pages: int | None = None


@dataclass(frozen=True)
class QueryOptions:
    """Options of one query. Unset fields take the client's defaults, then these defaults."""

    query_key: tuple[Any, ...]
    query_fn: QueryFn | None = None
    stale_time: StaleTime = 0.0
    gc_time: float = 300.0
    retry: RetryOption = 3
    retry_delay: RetryDelay | None = None  # None: exponential backoff with a cap and jitter
    network_mode: NetworkMode = NetworkMode.ONLINE
    initial_data: Any = None  # a value or a zero-argument function; None: none
    initial_data_updated_at: float | None = None
    meta: dict[str, Any] | None = None
    infinite: InfiniteOptions | None = None
    structural_sharing: bool = True
    normalize: Any = None  # a shape: EntityType, [shape] or {"field": shape}; see docs/normalization.md

    def __post_init__(self) -> None:
        if not isinstance(self.network_mode, NetworkMode):
            object.__setattr__(self, "network_mode", NetworkMode(self.network_mode))
        if self.gc_time < 0:
            raise ValueError(f"gc_time must be >= 0, got {self.gc_time!r}")


@dataclass(frozen=True)
class ObserverOptions:
    """Options of one observer (a consumer's view of a query)."""

    enabled: bool = True
    select: Callable[[Any], Any] | None = None
    placeholder_data: Any = None  # a value or ``f(previous_data)``; None: none
    refetch_interval: RefetchInterval = False
    refetch_interval_in_background: bool = False
    refetch_on_mount: RefetchTrigger = True
    refetch_on_focus: RefetchTrigger = True
    refetch_on_reconnect: RefetchTrigger = True
    notify_on_change_props: Sequence[str] | None = None  # None: data, error, status, fetch_status, is_stale
    throw_on_error: bool = False
    throttle: float | None = None  # notify at most once per this many seconds (first and last change)
    debounce: float | None = None  # notify once changes have stopped for this many seconds


@dataclass
class DefaultOptions:
    """Client-wide defaults; ``set_query_defaults`` adds per-key-prefix ones."""

    queries: dict[str, Any] = field(default_factory=dict)


def merge_options(base: QueryOptions, **overrides: Any) -> QueryOptions:
    clean = {k: v for k, v in overrides.items() if v is not _UNSET}
    return replace(base, **clean) if clean else base


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


_UNSET: Any = _Unset()
UNSET: Any = _UNSET


def resolve_stale_time(stale_time: StaleTime, query: Query) -> float:
    value = stale_time(query) if callable(stale_time) else stale_time
    return float(value)


def resolve_trigger(trigger: RefetchTrigger, query: Query) -> bool | Literal["always"]:
    return trigger(query) if callable(trigger) else trigger
