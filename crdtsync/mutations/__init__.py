"""Mutations: optimistic edits as CRDT transactions that roll back exactly, rebase under
fetches, report conflicts, pause offline and survive restarts in a durable outbox.

Start with :class:`~crdtsync.mutations.mixin.MutationsMixin` (its methods are on
``QueryClient``) and docs/mutations.md.
"""

from .cache import MutationCache
from .conflicts import ConflictPolicy, FieldConflict, VersionConflict
from .events import (
    ConflictDetected,
    MutationAdded,
    MutationCacheEvent,
    MutationRemoved,
    MutationUpdated,
    VersionConflictDetected,
)
from .filters import MutationFilters
from .mixin import MutationsMixin
from .mutation import Mutation
from .observer import MutationObserver, MutationObserverResult
from .optimistic import OptimisticTx
from .options import MutationFunctionContext, MutationOptions
from .outbox import Outbox, OutboxRecord
from .overlay import Overlay
from .state import MutationState

__all__ = [
    "ConflictDetected",
    "ConflictPolicy",
    "FieldConflict",
    "Mutation",
    "MutationAdded",
    "MutationCache",
    "MutationCacheEvent",
    "MutationFilters",
    "MutationFunctionContext",
    "MutationObserver",
    "MutationObserverResult",
    "MutationOptions",
    "MutationRemoved",
    "MutationState",
    "MutationUpdated",
    "MutationsMixin",
    "OptimisticTx",
    "Outbox",
    "OutboxRecord",
    "Overlay",
    "VersionConflict",
    "VersionConflictDetected",
]
