"""OptimisticTx: what a mutation's ``optimistic(tx, variables)`` function edits through.

Every write is recorded in the :class:`~crdtsync.mutations.overlay.Overlay` under the
mutation's id and written to the document with the mutation's own origin
(``crdtsync.origins.mutation_origin(id)``), all in one transaction, before ``mutate`` returns:
observers see the optimistic value at once. Because an optimistic function must be replayable
(it runs again when a mutation is restored from the outbox after a restart, and when a version
conflict is resolved with new variables), it must not read the clock or make random ids:
pass timestamps and ids in ``variables``.

>>> def rename(tx, v):
...     tx.merge(("todos", v["id"]), {"title": v["title"]})
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pycrdt import Map

from ..errors import MutationError
from ..keys import normalize_key
from ..replica import Replica, Route
from ..values import MISSING, decode
from .overlay import Overlay


class OptimisticTx:
    """Edits by query key. Read back what you wrote with :meth:`read`."""

    def __init__(self, overlay: Overlay, replica: Replica, mutation_id: int,
                 is_normalized: Callable[[Sequence[Any]], bool] | None = None):
        self._overlay = overlay
        self._replica = replica
        self.mutation_id = mutation_id
        self.changed = 0
        self._is_normalized = is_normalized

    def _key(self, key: Sequence[Any]) -> Any:
        nkey = normalize_key(key)
        if self._is_normalized is not None and self._is_normalized(nkey):
            raise MutationError(
                f"{nkey!r} is a normalized query: its slot holds entity ids; edit the entities with "
                "tx.merge_entity(entity_type, id, fields)"
            )
        return nkey

    def read(self, key: Sequence[Any]) -> Any:
        """The value stored at ``key`` now (including pending edits), or ``None``."""
        value = self._replica.read(key)
        return None if value is MISSING else value

    def set(self, key: Sequence[Any], value: Any) -> None:
        """Replace the value at ``key`` (a diff: only changed fields are written and tracked)."""
        nkey = self._key(key)
        if self._overlay.write(self.mutation_id, nkey, self._replica.route(nkey), (), value):
            self.changed += 1

    def merge(self, key: Sequence[Any], fields: Mapping[str, Any]) -> None:
        """Set some fields of the mapping at ``key``, leaving the others alone. The mutation
        owns exactly the named fields, even those that already hold the value: a rollback of
        an earlier edit then leaves them showing this mutation's value. When nothing is stored
        at ``key`` yet, the fields are created one by one (a rollback leaves ``{}``); use
        :meth:`set` to create a whole entity that a rollback removes again."""
        nkey = self._key(key)
        route = self._replica.route(nkey)
        node = self._replica.raw(route.doc_id, route.path)
        if node is not MISSING and not isinstance(node, Map):
            self.set(nkey, dict(fields))
            return
        for name, value in fields.items():
            if self._overlay.write(self.mutation_id, nkey, route, (name,), value, claim=True):
                self.changed += 1

    def merge_entity(self, entity_type: Any, entity_id: str | int, fields: Mapping[str, Any]) -> None:
        """Set some fields of a normalized entity (a ``crdtsync.normalize.EntityType``): every
        query that references it shows the edit, and a fetch of any of them is rebased."""
        eid = str(entity_id)
        route = Route(entity_type.doc_id(eid), (eid,), entity_type.depth)
        key = normalize_key((entity_type.name, eid))
        node = self._replica.raw(route.doc_id, route.path)
        if node is not MISSING and not isinstance(node, Map):  # granularity "plain": one value
            current = decode(node)
            merged = {**current, **fields} if isinstance(current, Mapping) else dict(fields)
            if self._overlay.write(self.mutation_id, key, route, (), merged):
                self.changed += 1
            return
        for name, value in fields.items():
            if self._overlay.write(self.mutation_id, key, route, (name,), value, claim=True):
                self.changed += 1

    def update(self, key: Sequence[Any], fn: Callable[[Any], Any]) -> None:
        """Set ``key`` to ``fn(current)`` (``current`` is ``None`` when absent); a ``None``
        result changes nothing, as with ``set_query_data``."""
        new = fn(self.read(key))
        if new is not None:
            self.set(key, new)

    def delete(self, key: Sequence[Any]) -> None:
        """Remove the value at ``key`` (a rollback brings it back)."""
        nkey = self._key(key)
        if self._overlay.delete(self.mutation_id, nkey, self._replica.route(nkey)):
            self.changed += 1


OptimisticFn = Callable[[OptimisticTx, Any], None]
