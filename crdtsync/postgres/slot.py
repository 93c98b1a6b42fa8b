"""One publication, one logical replication slot (pgoutput), one owner at a time.

The SQL a bridge needs from PostgreSQL, over psycopg 3 (async):

- :meth:`Slot.lock`: ``pg_try_advisory_lock`` on a connection held for the bridge's
  lifetime, so two bridges never consume one slot (:class:`~crdtsync.errors.SlotBusyError`);
- :meth:`Slot.ensure_publication`: ``CREATE PUBLICATION ... FOR TABLE ...`` when missing;
- :meth:`Slot.create_exporting`: ``CREATE_REPLICATION_SLOT ... LOGICAL pgoutput
  (SNAPSHOT 'export')`` over a replication connection; the exported snapshot stays importable
  while that connection stays open and idle (:class:`ExportedSnapshot`);
- :meth:`Slot.peek` / :meth:`Slot.advance`: ``pg_logical_slot_peek_binary_changes`` (bounded by
  an LSN and a change count) and ``pg_replication_slot_advance``, which moves the slot's
  confirmed flush position (what the server resends from after a restart).

Why polling and not a streaming replication connection: see docs/postgres.md, "Capture".
"""

from __future__ import annotations

import asyncio
import zlib
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import pq, sql

from ..errors import PostgresError, SlotBusyError
from .pgoutput import format_lsn, parse_lsn


@dataclass
class ExportedSnapshot:
    """A slot just created: its consistent point and the snapshot of exactly that point."""

    consistent_lsn: int
    snapshot_name: str
    _conn: psycopg.Connection[Any]

    def close(self) -> None:
        self._conn.close()


class Slot:
    def __init__(self, url: str, slot_name: str, publication: str) -> None:
        self.url = url
        self.name = slot_name
        self.publication = publication
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._lock_conn: psycopg.AsyncConnection[Any] | None = None

    @property
    def conn(self) -> psycopg.AsyncConnection[Any]:
        if self._conn is None:
            raise PostgresError("the slot is not open")
        return self._conn

    async def open(self) -> None:
        try:
            self._conn = await psycopg.AsyncConnection.connect(self.url, autocommit=True)
        except psycopg.Error as exc:
            raise PostgresError(f"cannot connect to PostgreSQL: {exc}") from exc

    async def lock(self) -> None:
        """Take the slot's advisory lock on a connection of its own, held until :meth:`close`."""
        try:
            self._lock_conn = await psycopg.AsyncConnection.connect(self.url, autocommit=True)
            key = zlib.crc32(f"crdtsync-slot:{self.name}".encode()) - 2**31
            cur = await self._lock_conn.execute("SELECT pg_try_advisory_lock(%s)", (key,))
            row = await cur.fetchone()
        except psycopg.Error as exc:
            raise PostgresError(f"cannot take the advisory lock of slot {self.name!r}: {exc}") from exc
        if not row or not row[0]:
            await self._lock_conn.close()
            self._lock_conn = None
            raise SlotBusyError(f"another bridge owns replication slot {self.name!r}")

    async def _one(self, query: Any, params: Any = None) -> Any:
        try:
            cur = await self.conn.execute(query, params)
            row = await cur.fetchone()
        except psycopg.Error as exc:
            raise PostgresError(f"{exc}") from exc
        return None if row is None else row[0]

    async def ensure_publication(self, tables: list[str]) -> None:
        """Create the publication for ``tables`` (qualified names) unless it exists."""
        if await self._one("SELECT 1 FROM pg_publication WHERE pubname = %s", (self.publication,)):
            return
        names = sql.SQL(", ").join(sql.Identifier(*t.split(".", 1)) for t in tables)
        try:
            await self.conn.execute(sql.SQL("CREATE PUBLICATION {} FOR TABLE {}").format(
                sql.Identifier(self.publication), names))
        except psycopg.Error as exc:
            raise PostgresError(f"cannot create publication {self.publication!r}: {exc}") from exc

    async def confirmed_lsn(self) -> int | None:
        """The slot's confirmed flush LSN, or None when the slot does not exist."""
        value = await self._one("SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = %s",
                                (self.name,))
        return None if value is None else parse_lsn(value)

    async def exists(self) -> bool:
        return bool(await self._one("SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", (self.name,)))

    async def drop(self) -> None:
        if await self.exists():
            await self._one("SELECT pg_drop_replication_slot(%s)", (self.name,))

    def _create_exporting_sync(self) -> ExportedSnapshot:
        conn = psycopg.Connection.connect(self.url, autocommit=True, replication="database")
        try:
            # Replication commands need the simple query protocol: libpq's PQexec.
            res = conn.pgconn.exec_(
                f'CREATE_REPLICATION_SLOT "{self.name}" LOGICAL pgoutput (SNAPSHOT \'export\')'.encode())
            if res.status != pq.ExecStatus.TUPLES_OK:
                raise PostgresError(f"CREATE_REPLICATION_SLOT failed: {res.error_message.decode(errors='replace')}")
            lsn, snapshot = res.get_value(0, 1), res.get_value(0, 2)
            if lsn is None or snapshot is None:
                raise PostgresError("CREATE_REPLICATION_SLOT returned no consistent point or snapshot")
            return ExportedSnapshot(parse_lsn(lsn.decode()), snapshot.decode(), conn)
        except BaseException:
            conn.close()
            raise

    async def create_exporting(self) -> ExportedSnapshot:
        """Create the slot and export the snapshot of its consistent point (close it after use)."""
        try:
            return await asyncio.to_thread(self._create_exporting_sync)
        except psycopg.Error as exc:
            raise PostgresError(f"cannot create replication slot {self.name!r}: {exc}") from exc

    async def current_lsn(self) -> int:
        return parse_lsn(await self._one("SELECT pg_current_wal_lsn()::text"))

    async def peek(self, upto_lsn: int, max_changes: int) -> list[tuple[int, bytes]]:
        """The pgoutput messages of the transactions committed after the confirmed position and
        at or before ``upto_lsn``, whole transactions, stopping after ``max_changes`` rows."""
        try:
            cur = await self.conn.execute(
                "SELECT lsn::text, data FROM pg_logical_slot_peek_binary_changes(%s, %s::pg_lsn, %s,"
                " 'proto_version', '1', 'publication_names', %s)",
                (self.name, format_lsn(upto_lsn), max_changes, self.publication))
            rows = await cur.fetchall()
        except psycopg.Error as exc:
            raise PostgresError(f"reading slot {self.name!r} failed: {exc}") from exc
        return [(parse_lsn(lsn), bytes(data)) for lsn, data in rows]

    async def advance(self, lsn: int) -> None:
        """Confirm everything up to ``lsn``: the server will not resend it."""
        await self._one("SELECT pg_replication_slot_advance(%s, %s::pg_lsn)", (self.name, format_lsn(lsn)))

    async def close(self) -> None:
        for conn in (self._conn, self._lock_conn):
            if conn is not None:
                await conn.close()
        self._conn = self._lock_conn = None
