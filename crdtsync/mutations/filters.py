"""Mutation filters for ``is_mutating``, ``mutation_state`` and ``MutationCache.find_all``.

``mutation_key`` matches by prefix (``exact=True``: equal keys only); ``status`` is one of
``idle``, ``pending``, ``paused``, ``success``, ``error`` (``pending`` includes paused ones,
as in TanStack, where a paused mutation is pending with ``is_paused``); ``scope`` and
``predicate`` narrow further.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..keys import hash_key, normalize_key, partial_match_key
from .state import MutationPhase

if TYPE_CHECKING:
    from .mutation import Mutation

_PHASES = ("idle", "pending", "paused", "success", "error")


@dataclass(frozen=True)
class MutationFilters:
    mutation_key: tuple[Any, ...] | None = None
    exact: bool = False
    status: MutationPhase | None = None
    scope: str | None = None
    predicate: Callable[[Mutation], bool] | None = None

    def __post_init__(self) -> None:
        if self.mutation_key is not None:
            object.__setattr__(self, "mutation_key", normalize_key(self.mutation_key))
        if self.status is not None and self.status not in _PHASES:
            raise ValueError(f"status must be one of {_PHASES}, got {self.status!r}")


def as_mutation_filters(filters: MutationFilters | Sequence[Any] | None = None, **kwargs: Any) -> MutationFilters:
    """Accept :class:`MutationFilters`, a key prefix, or keyword arguments."""
    if isinstance(filters, MutationFilters):
        return filters
    if filters is not None:
        kwargs["mutation_key"] = tuple(filters)
    return MutationFilters(**kwargs)


def match_mutation(f: MutationFilters, mutation: Mutation) -> bool:
    if f.mutation_key is not None:
        key = mutation.mutation_key
        if key is None:
            return False
        if f.exact:
            if hash_key(key) != hash_key(f.mutation_key):
                return False
        elif not partial_match_key(key, f.mutation_key):
            return False
    if f.status is not None:
        phase = mutation.state.phase
        if f.status == "pending":
            if phase not in ("pending", "paused"):
                return False
        elif phase != f.status:
            return False
    if f.scope is not None and mutation.scope != f.scope:
        return False
    return f.predicate is None or bool(f.predicate(mutation))
