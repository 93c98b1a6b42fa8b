"""Helpers of tests/postgres: a todos table, and reading a table or the bridge's documents as
``{id: entity}`` to compare them (the table read with psycopg's own type loaders, not the
bridge's text conversion)."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row

from crdtsync.normalize import EntityType
from crdtsync.replica import Replica
from crdtsync.values import MISSING

TODO = EntityType("todo")
TODOS_DDL = "CREATE TABLE todos (id int PRIMARY KEY, title text NOT NULL, done bool NOT NULL DEFAULT false, meta jsonb)"


async def table_entities(conn: psycopg.AsyncConnection[Any], table: str = "todos") -> dict[str, dict[str, Any]]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(f"SELECT * FROM {table}")
    return {str(row["id"]): dict(row) for row in await cur.fetchall()}


def doc_entities(replica: Replica, entity_type: EntityType = TODO) -> dict[str, Any]:
    prefix = f"entity:{entity_type.name}"
    out: dict[str, Any] = {}
    for doc_id in replica.doc_ids():
        if doc_id == prefix or doc_id.startswith((prefix + ":", prefix + "#")):
            stored = replica.read_path(doc_id, ())
            if stored is not MISSING:
                out.update(stored)
    return out
