"""PostgresBridge: table rows as entities in CRDT documents, fed by logical replication.

Lifecycle (:meth:`PostgresBridge.start`):

1. take the slot's advisory lock (one bridge per slot), check each declared :class:`Table`
   against the catalog, create the publication if it is missing;
2. **resume** when the ledger holds state copied from this slot and the slot still exists:
   load the ledger's documents into the replica; otherwise **copy**: (re)create the slot with
   an exported snapshot, read every table in a REPEATABLE READ transaction set to that
   snapshot, write the rows as entities, and store the documents with the slot's consistent
   point as the applied LSN, in one ledger commit;
3. **stream**: poll the slot (:meth:`~crdtsync.postgres.slot.Slot.peek`, bounded by the WAL
   position read just before), decode pgoutput, and apply each committed transaction as one
   replica batch (one CRDT update per affected document, origin ``fetch:postgres:<xid>``)
   writing only the columns that changed; store its updates and its end LSN in one ledger
   commit; only then advance the slot. A transaction at or below the ledger's LSN (a resend
   after a crash between the two) is skipped. A poll that found nothing advances the slot to
   the WAL position it was bounded by, so an idle slot does not pin WAL.

:attr:`PostgresBridge.position` is the LSN up to which every commit is applied and stored;
:meth:`PostgresBridge.wait_for` waits for it (for tests and read-your-writes).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from ..errors import PostgresError, TableMappingError
from ..origins import RESTORE, Origin, OriginKind
from ..replica import Replica
from . import pgoutput as pg
from .ledger import Ledger
from .rows import RowWriter
from .slot import ExportedSnapshot, Slot
from .tables import BoundTable, Table

log = logging.getLogger("crdtsync.postgres")

ProgressCallback = Callable[[str, int], None]
"""``(phase, lsn)``: ``"applied"`` (in the replica), ``"stored"`` (in the ledger) and
``"confirmed"`` (the slot advanced) for each transaction's end LSN; ``"copied"`` once after the
initial copy with the slot's consistent point."""


def postgres_origin(xid: int) -> Origin:
    """The origin of the replica changes made by database transaction ``xid``."""
    return Origin(OriginKind.FETCH, f"postgres:{xid}")


@dataclass
class _Txn:
    xid: int
    ops: list[pg.Message] = field(default_factory=list)
    end_lsn: int = 0


class PostgresBridge:
    def __init__(self, url: str, tables: Sequence[Table], *, ledger: str | Path, slot: str = "crdtsync",
                 publication: str = "crdtsync", replica: Replica | None = None, poll_interval: float = 0.01,
                 max_changes: int = 5000, on_progress: ProgressCallback | None = None) -> None:
        if not tables:
            raise TableMappingError("a bridge needs at least one table")
        self.url = url
        self.tables = list(tables)
        self.replica = replica if replica is not None else Replica()
        self.slot = Slot(url, slot, publication)
        self.ledger = Ledger(ledger)
        self.poll_interval = poll_interval
        self.max_changes = max_changes
        self.on_progress = on_progress
        self.position = 0  # every commit at or below is applied and stored
        self.confirmed = 0  # the slot's confirmed flush position, as far as this bridge moved it
        self.applied_lsn = 0
        self.transactions_applied = 0
        self.copied_rows = 0
        self.error: BaseException | None = None
        self._bound: dict[str, BoundTable] = {}  # qualified name -> table
        self._relations: dict[int, pg.Relation] = {}
        self._changed = asyncio.Condition()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._captured: list[tuple[str, bytes]] | None = None
        self.rows = RowWriter(self.replica)
        self._unsub = self.replica.on_update(self._capture)

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Lock, check, copy or resume; then stream in the background until :meth:`stop`."""
        try:
            await self.slot.open()
            await self.slot.lock()
            for t in self.tables:
                self._bound[t.qualified_name] = await self._bind(t)
            await self.slot.ensure_publication([t.qualified_name for t in self.tables])
            stored_lsn = self.ledger.applied_lsn
            if stored_lsn is not None and self.ledger.slot == self.slot.name and await self.slot.exists():
                self._restore(stored_lsn)
            else:
                await self._copy()
        except BaseException:
            await self.slot.close()
            raise
        self._task = asyncio.create_task(self._run(), name=f"crdtsync-pg-bridge:{self.slot.name}")

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.slot.close()
        self._unsub()
        self.ledger.close()

    async def __aenter__(self) -> PostgresBridge:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def wait_for(self, lsn: int, timeout: float = 10.0) -> None:
        """Wait until every commit at or below ``lsn`` is applied and stored (raises the bridge's
        error if it failed, ``TimeoutError`` after ``timeout`` seconds)."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: self.position >= lsn or self.error is not None)
        if self.error is not None:
            raise PostgresError(f"the bridge failed: {self.error}") from self.error

    async def wait_caught_up(self, timeout: float = 10.0) -> None:
        """Wait until everything committed before this call is applied."""
        async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn:
            cur = await conn.execute("SELECT pg_current_wal_lsn()::text")
            row = await cur.fetchone()
        assert row is not None
        await self.wait_for(pg.parse_lsn(row[0]), timeout)

    # -- the catalog -------------------------------------------------------------------------
    async def _bind(self, table: Table) -> BoundTable:
        conn = self.slot.conn
        cur = await conn.execute(
            "SELECT a.attname, a.atttypid::int FROM pg_attribute a JOIN pg_class c ON a.attrelid = c.oid"
            " JOIN pg_namespace n ON c.relnamespace = n.oid WHERE n.nspname = %s AND c.relname = %s"
            " AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum", (table.schema, table.table))
        columns = [(str(n), int(o)) for n, o in await cur.fetchall()]
        key: list[str] = []
        if columns:
            cur = await conn.execute(
                "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid"
                " AND a.attnum = ANY(i.indkey) WHERE i.indrelid = %s::regclass AND i.indisprimary",
                (table.qualified_name,))
            key = [str(r[0]) for r in await cur.fetchall()]
        return table.bind(columns, key)

    # -- start: restore or copy ----------------------------------------------------------------
    def _restore(self, lsn: int) -> None:
        for doc_id, state in self.ledger.documents().items():
            self.replica.apply_update(doc_id, state, origin=RESTORE)
        self.rows.shadow = self.ledger.rows()
        self.applied_lsn = self.position = lsn
        log.info("resumed slot %s at %s", self.slot.name, pg.format_lsn(lsn))

    async def _copy(self) -> None:
        await self.slot.drop()
        exported = await self.slot.create_exporting()
        try:
            rows = await self._read_snapshot(exported)
        finally:
            exported.close()
        seen: dict[str, dict[str, Any]] = {}  # doc -> id -> entity
        depth: dict[str, int | None] = {}
        shadow: dict[tuple[str, str], dict[str, Any]] = {}
        for bound, named in rows:
            eid = bound.entity_id(named)
            doc_id = bound.doc_id(eid)
            seen.setdefault(doc_id, {})[eid] = shadow[(doc_id, eid)] = bound.entity(named)
            depth[doc_id] = bound.entity_type.depth
        stale = {d: self.replica.read_path(d, ()) for d in self._bridge_docs()}
        with self.replica.batch(origin=Origin(OriginKind.FETCH, "postgres:copy")):
            for doc_id, old in stale.items():  # a re-copy: entities no longer in the tables go
                for eid in old if isinstance(old, dict) else ():
                    if eid not in seen.get(doc_id, {}):
                        self.replica.delete_path(doc_id, (eid,))
            for doc_id, items in seen.items():
                self.replica.write_many(doc_id, items, depth=depth[doc_id])
        self.rows.shadow = shadow
        docs = set(seen) | set(stale)
        states = [(d, self.replica.get_update(d)) for d in sorted(docs)]
        await asyncio.to_thread(self.ledger.reset, states, exported.consistent_lsn, self.slot.name, shadow)
        self.copied_rows = len(rows)
        self.applied_lsn = self.position = self.confirmed = exported.consistent_lsn
        self._progress("copied", exported.consistent_lsn)
        log.info("copied %d rows at %s", len(rows), pg.format_lsn(exported.consistent_lsn))

    async def _read_snapshot(self, exported: ExportedSnapshot) -> list[tuple[BoundTable, dict[str, str | None]]]:
        out: list[tuple[BoundTable, dict[str, str | None]]] = []
        try:
            async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn:
                await conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                await conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(exported.snapshot_name)))
                for bound in self._bound.values():
                    cols = list(bound.columns)
                    query = sql.SQL("SELECT {} FROM {}").format(
                        sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(c)) for c in cols),
                        sql.Identifier(bound.table.schema, bound.table.table))
                    async for row in conn.cursor().stream(query):
                        out.append((bound, dict(zip(cols, row, strict=True))))
                await conn.execute("COMMIT")
        except psycopg.Error as exc:
            raise PostgresError(f"the initial copy failed: {exc}") from exc
        return out

    def _bridge_docs(self) -> list[str]:
        prefixes = tuple(f"entity:{b.entity_type.name}" for b in self._bound.values())
        return [d for d in self.replica.doc_ids()
                if any(d == p or d.startswith((p + ":", p + "#")) for p in prefixes)]

    # -- streaming -----------------------------------------------------------------------------
    async def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                if not await self._poll_once():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stopping.wait(), self.poll_interval)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            log.exception("the PostgreSQL bridge stopped")
            self.error = exc
            async with self._changed:
                self._changed.notify_all()

    async def _poll_once(self) -> bool:
        """One peek; True when it found transactions (poll again at once)."""
        upto = await self.slot.current_lsn()
        rows = await self.slot.peek(upto, self.max_changes)
        txns = self._group(rows)
        last = 0
        for txn in txns:
            if txn.end_lsn > self.applied_lsn:
                await self._apply(txn)
            last = txn.end_lsn
        # Fewer rows than the cap: every transaction committed at or before ``upto`` was seen.
        confirm = upto if len(rows) < self.max_changes else last
        if confirm > self.confirmed:
            await self.slot.advance(confirm)
            self.confirmed = confirm
            for txn in txns:
                self._progress("confirmed", txn.end_lsn)
        if confirm > self.position:
            async with self._changed:
                self.position = confirm
                self._changed.notify_all()
        return bool(txns)

    def _group(self, rows: list[tuple[int, bytes]]) -> list[_Txn]:
        txns: list[_Txn] = []
        current: _Txn | None = None
        for _lsn, data in rows:
            msg = pg.decode(data)
            if isinstance(msg, pg.Begin):
                current = _Txn(msg.xid)
            elif isinstance(msg, pg.Commit):
                if current is None:
                    raise PostgresError("a pgoutput Commit without its Begin")
                current.end_lsn = msg.end_lsn
                txns.append(current)
                current = None
            elif isinstance(msg, pg.Relation):
                self._relations[msg.oid] = msg
            elif current is not None:
                current.ops.append(msg)
        return txns

    def _capture(self, doc_id: str, update: bytes, origin: Origin) -> None:
        if self._captured is not None:
            self._captured.append((doc_id, update))

    async def _apply(self, txn: _Txn) -> None:
        self._captured = []
        try:
            with self.replica.batch(origin=postgres_origin(txn.xid)):
                for op in txn.ops:
                    self._apply_op(op)
            captured = self._captured
        finally:
            self._captured = None
        changed_rows = self.rows.take()
        self._progress("applied", txn.end_lsn)
        await asyncio.to_thread(self.ledger.commit, captured, txn.end_lsn, changed_rows)
        self.applied_lsn = txn.end_lsn
        self.transactions_applied += 1
        self._progress("stored", txn.end_lsn)

    def _table_of(self, oid: int) -> tuple[BoundTable, pg.Relation] | None:
        rel = self._relations.get(oid)
        if rel is None:
            raise PostgresError(f"a change of relation {oid} before its Relation message")
        bound = self._bound.get(rel.qualified_name)
        return None if bound is None else (bound, rel)

    @staticmethod
    def _named(rel: pg.Relation, values: pg.Tuple) -> dict[str, Any]:
        return {c.name: v for c, v in zip(rel.columns, values, strict=True) if v is not pg.UNCHANGED}

    def _apply_op(self, op: pg.Message) -> None:
        if isinstance(op, pg.Truncate):
            for oid in op.relation_oids:
                found = self._table_of(oid)
                if found is not None:
                    self.rows.truncate(found[0])
            return
        if not isinstance(op, (pg.Insert, pg.Update, pg.Delete)):
            return  # Origin, Type and logical messages carry no row
        found = self._table_of(op.relation_oid)
        if found is None:
            return
        bound, rel = found
        if isinstance(op, pg.Insert):
            self.rows.insert(bound, self._named(rel, op.new))
        elif isinstance(op, pg.Delete):
            self.rows.delete(bound, self._named(rel, op.old))
        else:
            old = self._named(rel, op.old) if op.old is not None else None
            self.rows.update(bound, old, self._named(rel, op.new))

    def _progress(self, phase: str, lsn: int) -> None:
        if self.on_progress is not None:
            self.on_progress(phase, lsn)
