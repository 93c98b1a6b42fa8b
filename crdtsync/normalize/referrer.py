"""EntityReferrer: what the entity store needs of a query that references entities.

The normalize layer defines this narrow interface and never imports the query layer; a
:class:`crdtsync.query.query.Query` satisfies it. The store reads the query's key and shape to
write and read it, keeps its last result to patch changed entities into, and calls
:meth:`EntityReferrer.entities_changed` when entities it references change.
"""

from __future__ import annotations

from typing import Any, Protocol

from .shape import EntityKey


class EntityReferrer(Protocol):
    @property
    def query_hash(self) -> str:
        """Identifies the referrer in the store's index."""

    @property
    def query_key(self) -> tuple[Any, ...]:
        """Where its own slot (the ids) is stored."""

    @property
    def normalize_shape(self) -> Any:
        """Its shape: an ``EntityType``, ``[shape]`` or ``{"field": shape}``."""

    @property
    def current_data(self) -> Any:
        """Its last denormalized result (MISSING: none), which changed entities patch."""

    def entities_changed(self, keys: set[EntityKey]) -> None:
        """Entities it references changed (local, fetched or remote): refresh its data."""
