"""Server-side change events as entity updates.

Many backends push row changes (Postgres logical replication, Supabase/PGRestify realtime,
Firestore listeners, webhooks): ``{"op": "insert" | "update" | "delete", "record": {...}}``.
In crdtsync such an event is simply an update to the entity's subtree: every query that
references the entity is notified, versions keep reads monotonic, and a deleted entity drops
out of every list that referenced it.

::

    feed = ChangeFeed(client.entities, todo, where=lambda rec: rec["project_id"] == 7)
    feed.apply({"op": "update", "record": {"id": 3, "title": "renamed", "project_id": 7, "v": 4}})

``where`` filters events the way a realtime subscription filter would, on the record as it will
be (the stored entity overlaid with the event's fields, since delete events often carry only
the key); events it rejects are ignored (and counted in ``ChangeFeed.ignored``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import InvalidValueError
from ..origins import Origin, OriginKind
from .entity import EntityType
from .store import EntityStore

ChangeOp = Literal["insert", "update", "delete"]
PUSH = Origin(OriginKind.REMOTE, "change-feed")


@dataclass(frozen=True, slots=True)
class ChangeEvent:
    op: ChangeOp
    record: Mapping[str, Any]

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> ChangeEvent:
        """Validate a raw event; raises :class:`InvalidValueError` on anything malformed."""
        op = raw.get("op") if isinstance(raw, Mapping) else None
        record = raw.get("record") if isinstance(raw, Mapping) else None
        if op not in ("insert", "update", "delete"):
            raise InvalidValueError(f"a change event's op is insert, update or delete, got {op!r}")
        if not isinstance(record, Mapping):
            raise InvalidValueError("a change event carries its record as a mapping")
        return cls(op, record)


class ChangeFeed:
    """Applies change events of one entity type to an :class:`EntityStore`."""

    def __init__(self, store: EntityStore, entity_type: EntityType, *,
                 where: Callable[[Mapping[str, Any]], bool] | None = None, origin: Origin = PUSH):
        self.store = store
        self.entity_type = entity_type
        self.where = where
        self.origin = origin
        self.applied = 0
        self.ignored = 0

    def apply(self, raw: Mapping[str, Any] | ChangeEvent) -> bool:
        """Apply one event; True when it changed the stored entity."""
        event = raw if isinstance(raw, ChangeEvent) else ChangeEvent.parse(raw)
        t = self.entity_type
        eid = t.id_of(event.record)
        current = self.store.get(t, eid)
        # Delete and partial update events often carry only some columns: filter on the record
        # as it will be (the stored entity overlaid with the event's fields).
        full = {**current, **event.record} if isinstance(current, dict) else dict(event.record)
        if self.where is not None and not self.where(full):
            self.ignored += 1
            return False
        if event.op == "delete":
            changed = self.store.replica.delete_path(t.doc_id(eid), (eid,), origin=self.origin)
        elif event.op == "update":
            changed = self.store.write(t, full, origin=self.origin, started_at=self.store.tick())
        else:
            changed = self.store.write(t, event.record, origin=self.origin, started_at=self.store.tick())
        self.applied += 1
        return changed
