"""Durable storage of documents: the :class:`DocumentStore` protocol and two stores.

- :class:`MemoryStore`: in memory, the reference implementation.
- :class:`SQLiteStore`: one SQLite file, WAL, update log plus snapshots, group commit,
  compaction by size and count.

:func:`open_store` turns a CLI-style spec (``"memory:"`` or a path) into a store.
See ``docs/storage.md``.
"""

from __future__ import annotations

import os

from .base import DocStat, DocumentStore, InspectableStore, check_doc_id
from .memory import MemoryStore
from .merge import merge
from .sqlite import CompactionPolicy, SQLiteStore

MEMORY_SPEC = "memory:"


def open_store(spec: str | os.PathLike[str], *, policy: CompactionPolicy | None = None) -> InspectableStore:
    """``"memory:"`` gives a :class:`MemoryStore`; anything else is a path for a :class:`SQLiteStore`."""
    if os.fspath(spec) == MEMORY_SPEC:
        return MemoryStore()
    return SQLiteStore(spec, policy=policy)


__all__ = [
    "MEMORY_SPEC",
    "CompactionPolicy",
    "DocStat",
    "DocumentStore",
    "InspectableStore",
    "MemoryStore",
    "SQLiteStore",
    "check_doc_id",
    "merge",
    "open_store",
]
