"""Typed query-cache events, delivered to ``QueryCache.subscribe`` listeners."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

from .state import Action

if TYPE_CHECKING:
    from .observer import QueryObserver
    from .query import Query


@dataclass(frozen=True, slots=True)
class QueryAdded:
    query: Query


@dataclass(frozen=True, slots=True)
class QueryRemoved:
    query: Query


@dataclass(frozen=True, slots=True)
class QueryUpdated:
    query: Query
    action: Action


@dataclass(frozen=True, slots=True)
class ObserverAdded:
    query: Query
    observer: QueryObserver


@dataclass(frozen=True, slots=True)
class ObserverRemoved:
    query: Query
    observer: QueryObserver


@dataclass(frozen=True, slots=True)
class ObserverResultsUpdated:
    query: Query
    observer: QueryObserver


CacheEvent: TypeAlias = (
    QueryAdded | QueryRemoved | QueryUpdated | ObserverAdded | ObserverRemoved | ObserverResultsUpdated
)


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One line of the opt-in sync event log: when, what, which query, which action."""

    at: float
    event: str
    query_hash: str
    detail: str
