"""RowWriter: row changes into entity documents, writing only the columns that changed.

It keeps every carried row as the database last had it (the *shadow*, persisted by the
:class:`~crdtsync.postgres.ledger.Ledger` with each transaction). An UPDATE writes exactly the
columns whose new value differs from the shadow, field by field at ``(id, column)``, so a
concurrent edit of another field of the same entity (a client's optimistic edit merged into
the document) is left alone, whatever the table's REPLICA IDENTITY (DEFAULT sends no old
values, and an unchanged TOASTed column is not sent at all: it is simply not written).

An INSERT writes the whole entity; a DELETE removes it; an UPDATE that changes the key
removes the old entity and writes the new one; a TRUNCATE removes every entity of the table.
For ``granularity="plain"`` an entity is one value, so an UPDATE rewrites it whole (the
stored entity with the changed columns replaced).

The caller wraps one database transaction's calls in one ``replica.batch``; :meth:`take`
hands over the rows changed since the last call, for the ledger.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..replica import Replica
from ..values import MISSING
from .tables import BoundTable

RowKey = tuple[str, str]  # (document id, entity id)


class RowWriter:
    def __init__(self, replica: Replica, shadow: dict[RowKey, dict[str, Any]] | None = None) -> None:
        self.replica = replica
        self.shadow: dict[RowKey, dict[str, Any]] = shadow if shadow is not None else {}
        self._changed: dict[RowKey, dict[str, Any] | None] = {}

    def take(self) -> dict[RowKey, dict[str, Any] | None]:
        """The rows changed since the last call (``None``: deleted)."""
        changed, self._changed = self._changed, {}
        return changed

    def _set_row(self, key: RowKey, row: dict[str, Any] | None) -> None:
        if row is None:
            self.shadow.pop(key, None)
        else:
            self.shadow[key] = row
        self._changed[key] = row

    def insert(self, table: BoundTable, named: Mapping[str, Any]) -> None:
        eid = table.entity_id(named)
        doc_id = table.doc_id(eid)
        row = table.entity(named)
        self._set_row((doc_id, eid), row)
        self.replica.write_path(doc_id, (eid,), row, depth=table.entity_type.depth)

    def delete(self, table: BoundTable, named_old: Mapping[str, Any]) -> None:
        eid = table.entity_id(named_old)
        doc_id = table.doc_id(eid)
        self._set_row((doc_id, eid), None)
        self.replica.delete_path(doc_id, (eid,))

    def update(self, table: BoundTable, named_old: Mapping[str, Any] | None, named_new: Mapping[str, Any]) -> None:
        eid = table.entity_id(named_new)
        doc_id = table.doc_id(eid)
        key = (doc_id, eid)
        if named_old is not None:
            old_id = table.entity_id(named_old)
            if old_id != eid:  # the key changed: the entity moves
                old_key = (table.doc_id(old_id), old_id)
                before = self.shadow.get(old_key, {})
                self._set_row(old_key, None)
                self.replica.delete_path(old_key[0], (old_id,))
                merged = {**before, **table.entity(named_new)}
                self._set_row(key, merged)
                self.replica.write_path(doc_id, (eid,), merged, depth=table.entity_type.depth)
                return
        new = table.entity(named_new)  # without the unchanged TOASTed columns
        prior = self.shadow.get(key)
        changes = new if prior is None else {c: v for c, v in new.items() if c not in prior or prior[c] != v}
        row = {**(prior or {}), **new}
        self._set_row(key, row)
        depth = table.entity_type.depth
        current = self.replica.read_path(doc_id, (eid,))
        if depth == 0 or not isinstance(current, dict) or current is MISSING:
            base = current if isinstance(current, dict) else row
            self.replica.write_path(doc_id, (eid,), {**base, **changes}, depth=depth)
            return
        field_depth = None if depth is None else depth - 1
        for column, value in changes.items():
            self.replica.write_path(doc_id, (eid, column), value, depth=field_depth)

    def truncate(self, table: BoundTable) -> None:
        prefix = f"entity:{table.entity_type.name}"
        for doc_id in self.replica.doc_ids():
            if doc_id == prefix or doc_id.startswith((prefix + ":", prefix + "#")):
                stored = self.replica.read_path(doc_id, ())
                for eid in list(stored) if isinstance(stored, dict) else ():
                    self._set_row((doc_id, eid), None)
                    self.replica.delete_path(doc_id, (eid,))
        for key in [k for k in self.shadow if k[0] == prefix or k[0].startswith((prefix + ":", prefix + "#"))]:
            self._set_row(key, None)
