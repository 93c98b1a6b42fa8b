"""Tables as entity types: which table feeds which :class:`~crdtsync.normalize.EntityType`.

A :class:`Table` names a table (``"todos"`` or ``"app.todos"``), the entity type its rows
become, and optionally the columns to carry (default: all). A row is one entity: its id is
the entity type's ``id`` field (by default ``"id"``), which must be the table's primary key
column; its fields are the row's columns, converted by :mod:`crdtsync.postgres.values`. The
entity lives where the normalization layer puts it: ``entity_type.doc_id(id)``, path ``(id,)``,
so the entity type's ``partition`` and ``granularity`` apply unchanged.

:meth:`Table.bind` checks the declaration against the database's catalog once (the table
exists, has a single-column primary key equal to the entity id field, the columns exist) and
returns a :class:`BoundTable` that turns tuples into entities.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import TableMappingError
from ..normalize import EntityType
from .values import from_text


@dataclass(frozen=True)
class Table:
    name: str
    entity_type: EntityType
    columns: Sequence[str] | None = None

    @property
    def schema(self) -> str:
        return self.name.split(".", 1)[0] if "." in self.name else "public"

    @property
    def table(self) -> str:
        return self.name.split(".", 1)[1] if "." in self.name else self.name

    @property
    def qualified_name(self) -> str:
        return f"{self.schema}.{self.table}"

    def bind(self, catalog_columns: Sequence[tuple[str, int]], primary_key: Sequence[str]) -> BoundTable:
        """Check against the catalog (``[(column, type oid)]`` in table order, the key columns)."""
        if not catalog_columns:
            raise TableMappingError(f"table {self.qualified_name} does not exist (or has no columns)")
        if len(primary_key) != 1:
            raise TableMappingError(
                f"table {self.qualified_name} needs a single-column primary key, has {list(primary_key)}")
        key = primary_key[0]
        id_field = self.entity_type.id
        if callable(id_field) or id_field != key:
            raise TableMappingError(
                f"entity type {self.entity_type.name!r} is keyed by {id_field!r},"
                f" table {self.qualified_name} by {key!r}")
        types = dict(catalog_columns)
        wanted = list(self.columns) if self.columns is not None else [c for c, _ in catalog_columns]
        unknown = [c for c in wanted if c not in types]
        if unknown:
            raise TableMappingError(f"table {self.qualified_name} has no column(s) {unknown}")
        if key not in wanted:
            wanted.insert(0, key)
        return BoundTable(self, key, {c: types[c] for c in wanted})


@dataclass(frozen=True)
class BoundTable:
    table: Table
    key: str
    columns: Mapping[str, int]  # carried column -> type oid

    @property
    def entity_type(self) -> EntityType:
        return self.table.entity_type

    def doc_id(self, eid: str) -> str:
        t = self.entity_type
        return t.fixed_doc or t.doc_id(eid)

    def entity(self, named_text: Mapping[str, Any]) -> dict[str, Any]:
        """The carried columns of a row given as ``{column: text or None}`` (others ignored);
        columns absent from ``named_text`` (unchanged TOAST values) are left out."""
        return {c: from_text(oid, named_text[c]) for c, oid in self.columns.items() if c in named_text}

    def entity_id(self, named_text: Mapping[str, Any]) -> str:
        value = named_text.get(self.key)
        if value is None:
            raise TableMappingError(f"a row of {self.table.qualified_name} without its key {self.key!r}")
        return str(from_text(self.columns[self.key], value))
