"""Mutations: optimistic edits as CRDT transactions that roll back exactly, rebase under
fetches, report conflicts, pause offline and survive restarts in a durable outbox.

Start with the mutation methods of :class:`~crdtsync.client.QueryClient` (``mutate``,
``set_mutation_defaults``, ``use_outbox``, ...) and docs/mutations.md. The client owns a
:class:`MutationCache` (mutations, scopes, paused-mutation resume, the outbox bookkeeping) and
the optimistic :class:`Overlay`; nothing here imports the query layer (``crdtsync.query``).
"""

from .cache import MutationCache
from .conflicts import ConflictPolicy, FieldConflict, VersionConflict
from .env import MutationEnv
from .events import (
    ConflictDetected,
    MutationAdded,
    MutationCacheEvent,
    MutationRemoved,
    MutationUpdated,
    VersionConflictDetected,
)
from .filters import MutationFilters
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
    "MutationEnv",
    "MutationFilters",
    "MutationFunctionContext",
    "MutationObserver",
    "MutationObserverResult",
    "MutationOptions",
    "MutationRemoved",
    "MutationState",
    "MutationUpdated",
    "OptimisticTx",
    "Outbox",
    "OutboxRecord",
    "Overlay",
    "VersionConflict",
    "VersionConflictDetected",
]
