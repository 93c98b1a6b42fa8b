"""Typed mutation-cache events, delivered to ``client.mutation_cache.subscribe`` listeners."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

from .conflicts import FieldConflict, VersionConflict
from .state import MutationAction

if TYPE_CHECKING:
    from .mutation import Mutation


@dataclass(frozen=True, slots=True)
class MutationAdded:
    mutation: Mutation


@dataclass(frozen=True, slots=True)
class MutationRemoved:
    mutation: Mutation


@dataclass(frozen=True, slots=True)
class MutationUpdated:
    mutation: Mutation
    action: MutationAction


@dataclass(frozen=True, slots=True)
class ConflictDetected:
    """A field with an unsettled local edit changed concurrently (see ``conflict.source``)."""

    conflict: FieldConflict


@dataclass(frozen=True, slots=True)
class VersionConflictDetected:
    """The server rejected a mutation's version; ``resolved`` is what the resolver returned
    (``None``: it gave up and the mutation fails)."""

    mutation: Mutation
    conflict: VersionConflict
    resolved: object


MutationCacheEvent: TypeAlias = (
    MutationAdded | MutationRemoved | MutationUpdated | ConflictDetected | VersionConflictDetected
)
