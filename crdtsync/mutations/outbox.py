"""The durable outbox: pending mutations in SQLite (stdlib ``sqlite3``), so they survive a crash.

``mutate`` inserts a row (mutation key, scope, msgpack-encoded variables, idempotency key)
and commits it before returning; the row is deleted when the mutation settles. After a
restart, ``client.use_outbox(path)`` reads the rows back in insertion order and recreates the
mutations as *paused*; ``await client.resume_paused_mutations()`` then runs them one at a time,
in order, each exactly once per process lifetime. A crash after the server applied a mutation
but before its row was deleted resends it with the same idempotency key, so a server that
deduplicates on that key applies it exactly once.

Each row also carries the field bases of its mutation's optimistic edit (what a rollback
restores), rewritten with :meth:`Outbox.set_bases` whenever one of them changes while the
mutation is pending (``MutationRuntime.refresh_bases``: a fetch, a peer, an earlier mutation).

Durability: the database runs in WAL mode. ``synchronous="NORMAL"`` (default) makes every
commit survive the process being killed (``kill -9``), not a power cut; ``"FULL"`` also
survives a power cut at the cost of one fsync per mutation. Every sqlite3 error is wrapped in
:class:`~crdtsync.errors.OutboxError`.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import msgpack

from ..errors import OutboxError
from ..keys import QueryKey, normalize_key

Synchronous = Literal["OFF", "NORMAL", "FULL", "EXTRA"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS crdtsync_outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_key TEXT NOT NULL UNIQUE,
    mutation_key TEXT NOT NULL,
    scope TEXT,
    variables BLOB NOT NULL,
    submitted_at REAL NOT NULL,
    bases BLOB
)
"""


@dataclass(frozen=True, slots=True)
class OutboxRecord:
    seq: int
    idempotency_key: str
    mutation_key: QueryKey
    scope: str | None
    variables: Any
    submitted_at: float
    bases: Any = None  # encoded field bases (overlay.encode_bases), None when not stored


def pack_variables(variables: Any) -> bytes:
    """msgpack bytes of ``variables``; raises :class:`OutboxError` when they cannot be stored."""
    try:
        return bytes(msgpack.packb(variables, use_bin_type=True, strict_types=False))
    except (TypeError, ValueError, OverflowError) as exc:
        raise OutboxError(f"mutation variables are not serialisable (msgpack): {exc}") from exc


def unpack_variables(data: bytes) -> Any:
    try:
        return msgpack.unpackb(data, raw=False)
    except Exception as exc:  # msgpack raises several unrelated types
        raise OutboxError(f"stored mutation variables do not decode: {exc}") from exc


class Outbox:
    """Open (or create) the outbox at ``path`` (``":memory:"`` for tests that need no disk)."""

    def __init__(self, path: str, *, synchronous: Synchronous = "NORMAL"):
        if synchronous not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ValueError(f"synchronous must be OFF, NORMAL, FULL or EXTRA, got {synchronous!r}")
        self.path = path
        self.synchronous = synchronous
        try:
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={synchronous}")
            self._db.execute(_SCHEMA)
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(crdtsync_outbox)")}
            if "bases" not in columns:  # a file from before bases were stored: its rows have none
                self._db.execute("ALTER TABLE crdtsync_outbox ADD COLUMN bases BLOB")
        except sqlite3.Error as exc:
            raise OutboxError(f"cannot open outbox {path!r}: {exc}") from exc
        self._closed = False

    def add(self, idempotency_key: str, mutation_key: QueryKey, scope: str | None, variables: Any,
            submitted_at: float, *, commit: bool = True, bases: Any = None) -> int:
        """Store a mutation; returns its sequence number. Committed on return, unless
        ``commit=False``: then it joins an open transaction that :meth:`commit` ends (group
        commit, used for the mutations of one ``client.batch()``)."""
        blob = pack_variables(variables)
        bases_blob = None if bases is None else pack_variables(bases)
        try:
            if not commit and not self._db.in_transaction:
                self._db.execute("BEGIN")
            cur = self._db.execute(
                "INSERT INTO crdtsync_outbox (idempotency_key, mutation_key, scope, variables, submitted_at, bases)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (idempotency_key, json.dumps(list(mutation_key), sort_keys=True), scope, blob, submitted_at,
                 bases_blob),
            )
        except sqlite3.Error as exc:
            raise OutboxError(f"cannot store mutation {idempotency_key}: {exc}") from exc
        return int(cur.lastrowid or 0)

    def commit(self) -> None:
        """Commit the rows added with ``commit=False`` (no-op when none are waiting)."""
        if self._db.in_transaction:
            self._run("COMMIT", ())

    def update_variables(self, idempotency_key: str, variables: Any) -> None:
        """Replace the stored variables (after a version conflict was resolved)."""
        blob = pack_variables(variables)
        self._run("UPDATE crdtsync_outbox SET variables = ? WHERE idempotency_key = ?", (blob, idempotency_key))

    def set_bases(self, idempotency_key: str, bases: Any) -> None:
        """Store the field bases of a mutation's optimistic edit (``overlay.encode_bases``), in
        the open transaction when there is one."""
        self._run("UPDATE crdtsync_outbox SET bases = ? WHERE idempotency_key = ?",
                  (pack_variables(bases), idempotency_key))

    def set_bases_many(self, rows: Sequence[tuple[str, Any]]) -> None:
        """:meth:`set_bases` for several mutations: one UPDATE each, one commit for all of them
        (one fsync with ``synchronous="FULL"``), or in the open transaction when there is one."""
        params = [(pack_variables(bases), ikey) for ikey, bases in rows]
        if not params:
            return
        own = False
        try:
            own = not self._db.in_transaction
            if own:
                self._db.execute("BEGIN")
            self._db.executemany("UPDATE crdtsync_outbox SET bases = ? WHERE idempotency_key = ?", params)
            if own:
                self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            if own and self._db.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
            raise OutboxError(f"outbox write failed: {exc}") from exc

    def remove(self, idempotency_key: str) -> None:
        """Forget a settled mutation."""
        self._run("DELETE FROM crdtsync_outbox WHERE idempotency_key = ?", (idempotency_key,))

    def pending(self) -> list[OutboxRecord]:
        """Every stored mutation, oldest first."""
        try:
            rows = self._db.execute(
                "SELECT seq, idempotency_key, mutation_key, scope, variables, submitted_at, bases"
                " FROM crdtsync_outbox ORDER BY seq"
            ).fetchall()
        except sqlite3.Error as exc:
            raise OutboxError(f"cannot read outbox: {exc}") from exc
        out = []
        for seq, ikey, mkey, scope, blob, at, bases in rows:
            try:
                key = normalize_key(json.loads(mkey))
            except (ValueError, TypeError) as exc:
                raise OutboxError(f"outbox row {seq} has a malformed mutation key") from exc
            out.append(OutboxRecord(int(seq), str(ikey), key, scope, unpack_variables(bytes(blob)), float(at),
                                    None if bases is None else unpack_variables(bytes(bases))))
        return out

    def __len__(self) -> int:
        try:
            return int(self._db.execute("SELECT COUNT(*) FROM crdtsync_outbox").fetchone()[0])
        except sqlite3.Error as exc:
            raise OutboxError(f"cannot read outbox: {exc}") from exc

    def _run(self, sql: str, params: tuple[Any, ...]) -> None:
        try:
            self._db.execute(sql, params)
        except sqlite3.Error as exc:
            raise OutboxError(f"outbox write failed: {exc}") from exc

    def close(self) -> None:
        if not self._closed:
            self.commit()
            self._closed = True
            self._db.close()
