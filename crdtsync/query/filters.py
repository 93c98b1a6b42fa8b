"""Query filters: which queries an operation (invalidate, refetch, cancel, ...) applies to.

``query_key`` matches by prefix (a mapping part matches when the filter's mapping is a
subset), or exactly with ``exact=True``. ``type`` is ``active`` (has an enabled observer),
``inactive`` or ``all``. ``stale``, ``fetch_status`` and ``predicate`` narrow further.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ..keys import hash_key, normalize_key, partial_match_key

if TYPE_CHECKING:
    from .query import Query

QueryType = Literal["active", "inactive", "all"]


@dataclass(frozen=True)
class QueryFilters:
    query_key: tuple[Any, ...] | None = None
    exact: bool = False
    type: QueryType = "all"
    stale: bool | None = None
    fetch_status: Literal["fetching", "paused", "idle"] | None = None
    predicate: Callable[[Query], bool] | None = None

    def __post_init__(self) -> None:
        if self.query_key is not None:
            object.__setattr__(self, "query_key", normalize_key(self.query_key))
        if self.type not in ("active", "inactive", "all"):
            raise ValueError(f"type must be 'active', 'inactive' or 'all', got {self.type!r}")


def as_filters(filters: QueryFilters | Sequence[Any] | None = None, **kwargs: Any) -> QueryFilters:
    """Accept a :class:`QueryFilters`, a key prefix, or keyword arguments."""
    if isinstance(filters, QueryFilters):
        return filters
    if filters is not None:
        kwargs["query_key"] = tuple(filters)
    return QueryFilters(**kwargs)


def match_query(filters: QueryFilters, query: Query) -> bool:
    if filters.query_key is not None:
        if filters.exact:
            if query.query_hash != hash_key(filters.query_key):
                return False
        elif not partial_match_key(query.query_key, filters.query_key):
            return False
    if filters.type != "all":
        active = query.is_active()
        if (filters.type == "active") != active:
            return False
    if filters.stale is not None and query.is_stale() != filters.stale:
        return False
    if filters.fetch_status is not None and query.state.fetch_status != filters.fetch_status:
        return False
    return not (filters.predicate is not None and not filters.predicate(query))
