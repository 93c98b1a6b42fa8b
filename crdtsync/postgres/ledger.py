"""The bridge's own durable state: its documents' updates, the rows as the database last had
them, and the applied LSN, in one commit.

A SQLite file (WAL journal, ``synchronous=FULL``). :meth:`Ledger.commit` appends the CRDT
updates of one applied database transaction *and* records its LSN in a single SQLite
transaction, so after a crash either both are there or neither is: the bridge then skips
every database transaction at or below :attr:`Ledger.applied_lsn` and re-applies the rest.
The replication slot is advanced only after this commit returns. The stored rows are what
the bridge compares an UPDATE's new row with to find the columns that changed
(:class:`~crdtsync.postgres.rows.RowWriter`).

:meth:`Ledger.reset` replaces everything (a fresh initial copy) in one transaction too.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pycrdt import merge_updates

from ..errors import StorageError

RowChanges = Mapping[tuple[str, str], "Mapping[str, Any] | None"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS updates (seq INTEGER PRIMARY KEY, doc_id TEXT NOT NULL, data BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS updates_doc ON updates (doc_id, seq);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rows (doc_id TEXT NOT NULL, eid TEXT NOT NULL, data TEXT NOT NULL,
                                 PRIMARY KEY (doc_id, eid));
"""


class Ledger:
    def __init__(self, path: str | Path) -> None:
        try:
            self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open the bridge ledger {path}: {exc}") from exc

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    @property
    def applied_lsn(self) -> int | None:
        """The end LSN of the last database transaction whose updates are stored (None: never copied)."""
        value = self._meta("applied_lsn")
        return None if value is None else int(value)

    @property
    def slot(self) -> str | None:
        """The replication slot the stored state was copied from and follows."""
        return self._meta("slot")

    def documents(self) -> dict[str, bytes]:
        """Every stored document as one merged update."""
        parts: dict[str, list[bytes]] = {}
        for doc_id, data in self._db.execute("SELECT doc_id, data FROM updates ORDER BY seq"):
            parts.setdefault(doc_id, []).append(bytes(data))
        return {d: (u[0] if len(u) == 1 else merge_updates(*u)) for d, u in parts.items()}

    def rows(self) -> dict[tuple[str, str], dict[str, Any]]:
        """``(doc_id, entity id) -> row`` as the database last had it (the carried columns)."""
        return {(d, e): json.loads(data) for d, e, data in self._db.execute("SELECT doc_id, eid, data FROM rows")}

    def _write(self, updates: Iterable[tuple[str, bytes]], lsn: int, rows: RowChanges, *,
               reset_slot: str | None) -> None:
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if reset_slot is not None:
                    self._db.execute("DELETE FROM updates")
                    self._db.execute("DELETE FROM rows")
                    self._db.execute("INSERT OR REPLACE INTO meta VALUES ('slot', ?)", (reset_slot,))
                self._db.executemany("INSERT INTO updates (doc_id, data) VALUES (?, ?)", updates)
                self._db.executemany("DELETE FROM rows WHERE doc_id = ? AND eid = ?",
                                     [k for k, v in rows.items() if v is None])
                self._db.executemany("INSERT OR REPLACE INTO rows VALUES (?, ?, ?)",
                                     [(*k, json.dumps(v)) for k, v in rows.items() if v is not None])
                self._db.execute("INSERT OR REPLACE INTO meta VALUES ('applied_lsn', ?)", (str(lsn),))
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StorageError(f"the bridge ledger could not commit LSN {lsn}: {exc}") from exc

    def commit(self, updates: Iterable[tuple[str, bytes]], lsn: int, rows: RowChanges) -> None:
        """Append ``(doc_id, update)`` pairs, store the changed rows (``None``: deleted) and set
        the applied LSN, atomically."""
        self._write(updates, lsn, rows, reset_slot=None)

    def reset(self, states: Iterable[tuple[str, bytes]], lsn: int, slot: str, rows: RowChanges) -> None:
        """Replace everything with ``states`` and ``rows`` copied at ``lsn`` from ``slot``, atomically."""
        self._write(states, lsn, rows, reset_slot=slot)

    def close(self) -> None:
        self._db.close()
