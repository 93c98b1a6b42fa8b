"""MutationCache: every mutation of a client, in creation order, with typed events.

Subscribe with ``client.mutation_cache.subscribe(listener)``; the listener receives
:data:`~crdtsync.mutations.events.MutationCacheEvent` values (added, updated with the action,
removed, field conflicts, version conflicts). Settled mutations without observers are removed
after their ``gc_time``. The cache also keeps the order of each ``scope``: a new mutation
waits for the previous one of its scope.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..core.subscribable import Subscribable
from .events import MutationAdded, MutationCacheEvent, MutationRemoved, MutationUpdated
from .filters import MutationFilters, as_mutation_filters, match_mutation
from .state import MutationAction

if TYPE_CHECKING:
    from .mutation import Mutation


class MutationCache(Subscribable[Callable[[MutationCacheEvent], None]]):
    def __init__(self) -> None:
        super().__init__()
        self._mutations: dict[int, Mutation] = {}
        self._scope_tail: dict[str, Mutation] = {}
        self._log: collections.deque[MutationCacheEvent] | None = None

    def add(self, mutation: Mutation) -> None:
        self._mutations[mutation.mutation_id] = mutation
        self._emit(MutationAdded(mutation))

    def remove(self, mutation: Mutation) -> None:
        if self._mutations.get(mutation.mutation_id) is mutation:
            del self._mutations[mutation.mutation_id]
            mutation.clear_gc()
            if mutation.scope is not None and self._scope_tail.get(mutation.scope) is mutation:
                earlier = mutation._prev  # settled early: earlier ones may still be running
                if earlier is None:
                    del self._scope_tail[mutation.scope]
                else:
                    self._scope_tail[mutation.scope] = earlier
            self._emit(MutationRemoved(mutation))

    def clear(self) -> None:
        for m in list(self._mutations.values()):
            self.remove(m)

    def get_all(self) -> list[Mutation]:
        return list(self._mutations.values())

    def find_all(self, filters: MutationFilters | Sequence[Any] | None = None, **kwargs: Any) -> list[Mutation]:
        f = as_mutation_filters(filters, **kwargs)
        return [m for m in self._mutations.values() if match_mutation(f, m)]

    def find(self, filters: MutationFilters | Sequence[Any] | None = None, **kwargs: Any) -> Mutation | None:
        found = self.find_all(filters, **kwargs)
        return found[0] if found else None

    def __len__(self) -> int:
        return len(self._mutations)

    # -- events ------------------------------------------------------------------------------
    def enable_event_log(self, maxlen: int = 1000) -> None:
        """Keep the last ``maxlen`` events (``event_log()``), for debugging and tests."""
        self._log = collections.deque(maxlen=maxlen)

    def event_log(self) -> list[MutationCacheEvent]:
        return list(self._log) if self._log is not None else []

    def _emit(self, event: MutationCacheEvent) -> None:
        if self._log is not None:
            self._log.append(event)
        for listener in list(self._listeners):
            listener(event)

    def _updated(self, mutation: Mutation, action: MutationAction) -> None:
        self._emit(MutationUpdated(mutation, action))

    def _settled(self, mutation: Mutation) -> None:
        mutation.schedule_gc()

    def _join_scope(self, mutation: Mutation) -> Mutation | None:
        """Record ``mutation`` as the last of its scope; return the nearest earlier one that
        has not settled (a settled tail may have settled early, before its predecessors)."""
        from .mutation import first_unsettled

        if mutation.scope is None:
            return None
        prev = self._scope_tail.get(mutation.scope)
        self._scope_tail[mutation.scope] = mutation
        return first_unsettled(prev)
