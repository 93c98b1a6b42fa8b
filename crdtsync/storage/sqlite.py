""":class:`SQLiteStore`: one SQLite file (WAL mode) holding an update log plus snapshots.

Layout: ``snapshots(doc_id, data, crc)`` holds each document's compacted state and
``updates(id, doc_id, data, crc)`` the updates appended since. ``load`` merges the snapshot
with the log; every row carries a CRC-32 that is checked on read.

Writes use **group commit**: every call is queued to one writer thread, which takes all the
operations waiting (up to ``max_batch``) and runs them in one transaction, committed with
``synchronous=FULL`` (the WAL is fsync'd). ``append`` returns only after that commit, so a
returned ``append`` survives a crash or power loss; 1,000 concurrent appends cost a handful of
fsyncs, not 1,000. The event loop never blocks on the disk.

**Compaction by size and count**: after a commit, each document whose log holds at least
``max_log_updates`` updates, or ``max_log_bytes`` bytes, or more log bytes than
``log_ratio`` times its snapshot (once past ``min_log_bytes``), is squashed in one transaction:
snapshot and log are applied into a scratch pycrdt document whose ``get_update()`` becomes
the new snapshot. Freed pages are returned with ``incremental_vacuum`` and the WAL is
truncated, so the file stays within a small factor of the encoded documents however long
the relay runs (``benchmarks/store_growth.py`` measures it).

**Corruption**: a row whose CRC does not match, or bytes that do not decode, raise
:class:`~crdtsync.errors.CorruptStoreError`. That document is then marked corrupt for the
lifetime of the store: ``append`` and ``replace`` refuse it and compaction skips it, so the
bad rows stay on disk for an operator (``crdtsync inspect``). Only ``delete`` clears it.
A file that is not an SQLite database raises ``CorruptStoreError`` from the constructor.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import sqlite3
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import CorruptStoreError, StorageError
from .base import DocStat, check_doc_id, check_update
from .merge import merge

log = logging.getLogger("crdtsync.storage.sqlite")

SCHEMA_VERSION = "1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS snapshots (
    doc_id TEXT PRIMARY KEY, data BLOB NOT NULL, crc INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS updates (
    id INTEGER PRIMARY KEY AUTOINCREMENT, doc_id TEXT NOT NULL, data BLOB NOT NULL, crc INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS updates_by_doc ON updates (doc_id, id);
"""


def _crc(data: bytes) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class CompactionPolicy:
    """When a document's log is squashed into its snapshot (any condition triggers it)."""

    max_log_updates: int = 500
    max_log_bytes: int = 1 << 20
    log_ratio: float = 1.0
    min_log_bytes: int = 16 << 10

    def __post_init__(self) -> None:
        if self.max_log_updates < 1 or self.max_log_bytes < 1 or self.min_log_bytes < 0:
            raise ValueError("compaction thresholds must be positive")
        if self.log_ratio <= 0:
            raise ValueError("log_ratio must be > 0")

    def due(self, snapshot_bytes: int, log_updates: int, log_bytes: int) -> bool:
        if log_updates == 0:
            return False
        if log_updates >= self.max_log_updates or log_bytes >= self.max_log_bytes:
            return True
        return log_bytes >= self.min_log_bytes and log_bytes > self.log_ratio * snapshot_bytes


@dataclass
class _Op:
    kind: str
    doc_id: str = ""
    data: bytes = b""
    loop: asyncio.AbstractEventLoop | None = None
    future: asyncio.Future[Any] | None = None
    result: Any = None
    error: BaseException | None = None


@dataclass
class _Counts:
    snapshot_bytes: int = 0
    log_updates: int = 0
    log_bytes: int = 0


@dataclass
class _WriterState:
    counts: dict[str, _Counts] = field(default_factory=dict)
    corrupt: set[str] = field(default_factory=set)


_WRITES = frozenset({"append", "replace", "delete"})


class SQLiteStore:
    """A durable :class:`~crdtsync.storage.DocumentStore` in one SQLite file.

    ``SQLiteStore(path)`` opens (or creates) the file; call ``await store.close()`` when done.
    Satisfies ``InspectableStore``. ``compactions`` counts squashes done by this instance.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        policy: CompactionPolicy | None = None,
        max_batch: int = 512,
    ):
        if max_batch < 1:
            raise ValueError("max_batch must be >= 1")
        self.path = os.fspath(path)
        self.policy = policy or CompactionPolicy()
        self.max_batch = max_batch
        self.compactions = 0
        self.commits = 0
        self._queue: queue.SimpleQueue[_Op | None] = queue.SimpleQueue()
        self._state = _WriterState()
        self._closed = False
        self._closing: asyncio.Future[None] | None = None
        self._size_cache = 0
        opened = threading.Event()
        failure: list[BaseException] = []
        self._thread = threading.Thread(
            target=self._run, args=(opened, failure), name=f"crdtsync-sqlite:{self.path}", daemon=True
        )
        self._thread.start()
        opened.wait()
        if failure:
            self._closed = True
            raise failure[0]
        self._size_cache = self._file_size()

    # ------------------------------------------------------------------ public API

    async def load(self, doc_id: str) -> bytes | None:
        result: bytes | None = await self._submit("load", check_doc_id(doc_id))
        return result

    async def append(self, doc_id: str, update: bytes) -> None:
        await self._submit("append", check_doc_id(doc_id), check_update(update))

    async def replace(self, doc_id: str, state: bytes) -> None:
        await self._submit("replace", check_doc_id(doc_id), check_update(state))

    async def delete(self, doc_id: str) -> None:
        await self._submit("delete", check_doc_id(doc_id))

    async def list_docs(self) -> list[str]:
        result: list[str] = await self._submit("list")
        return result

    async def stat(self, doc_id: str) -> DocStat | None:
        result: DocStat | None = await self._submit("stat", check_doc_id(doc_id))
        return result

    def total_size(self) -> int:
        """Bytes on disk (database plus WAL), as of the last commit."""
        return self._size_cache

    async def close(self) -> None:
        """Commit everything queued, checkpoint the WAL, stop the writer thread."""
        if self._closing is not None:
            await asyncio.shield(self._closing)
            return
        loop = asyncio.get_running_loop()
        self._closing = loop.create_future()
        self._closed = True
        done = loop.create_future()
        self._queue.put(_Op("close", loop=loop, future=done))
        self._queue.put(None)
        try:
            await done
        finally:
            await asyncio.to_thread(self._thread.join)
            self._closing.set_result(None)

    # ------------------------------------------------------------------ plumbing

    async def _submit(self, kind: str, doc_id: str = "", data: bytes = b"") -> Any:
        if self._closed:
            raise StorageError("store is closed")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        self._queue.put(_Op(kind, doc_id, data, loop, fut))
        return await fut

    def _file_size(self) -> int:
        total = 0
        for suffix in ("", "-wal"):
            with contextlib.suppress(OSError):
                total += os.path.getsize(self.path + suffix)
        return total

    # ------------------------------------------------------------------ writer thread

    def _run(self, opened: threading.Event, failure: list[BaseException]) -> None:
        try:
            conn = self._connect()
        except BaseException as exc:
            failure.append(exc)
            opened.set()
            return
        opened.set()
        try:
            self._loop(conn)
        finally:
            with contextlib.suppress(sqlite3.Error):
                conn.close()

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open {self.path!r}: {exc}") from exc
        try:
            conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA journal_size_limit = 1048576")
            conn.executescript(_SCHEMA)
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            if row is None:
                conn.execute("INSERT INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
            elif row[0] != SCHEMA_VERSION:
                conn.close()
                raise StorageError(f"{self.path!r} has schema {row[0]}, this version reads {SCHEMA_VERSION}")
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise CorruptStoreError(f"{self.path!r} is not a crdtsync SQLite store: {exc}") from exc
        return conn

    def _loop(self, conn: sqlite3.Connection) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._queue.put(None)
                    break
                batch.append(nxt)
            self._run_batch(conn, batch)

    def _run_batch(self, conn: sqlite3.Connection, batch: list[_Op]) -> None:
        touched: set[str] = set()
        wrote = False
        try:
            conn.execute("BEGIN IMMEDIATE")
            for op in batch:
                if op.kind == "close":
                    continue
                conn.execute("SAVEPOINT op")
                try:
                    op.result = self._execute(conn, op)
                    conn.execute("RELEASE op")
                    if op.kind in _WRITES:
                        wrote = True
                        touched.add(op.doc_id)
                except Exception as exc:
                    conn.execute("ROLLBACK TO op")
                    conn.execute("RELEASE op")
                    op.error = exc
            conn.execute("COMMIT")
            if wrote:
                self.commits += 1
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            self._state.counts.clear()  # counters may be stale now; recount lazily
            err = StorageError(f"commit failed: {exc}")
            err.__cause__ = exc
            for op in batch:
                if op.error is None:
                    op.error = err
        for doc_id in touched:
            self._maybe_compact(conn, doc_id)
        if any(op.kind == "close" for op in batch):
            with contextlib.suppress(sqlite3.Error):
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._size_cache = self._file_size()
        for op in batch:
            self._resolve(op)

    @staticmethod
    def _resolve(op: _Op) -> None:
        fut, loop = op.future, op.loop
        if fut is None or loop is None:
            return

        def settle(fut: asyncio.Future[Any] = fut, result: Any = op.result, error: Any = op.error) -> None:
            if fut.done():
                return
            if error is not None:
                fut.set_exception(error)
            else:
                fut.set_result(result)

        with contextlib.suppress(RuntimeError):  # loop already closed: nobody is waiting
            loop.call_soon_threadsafe(settle)

    def _counts(self, conn: sqlite3.Connection, doc_id: str) -> _Counts:
        counts = self._state.counts.get(doc_id)
        if counts is None:
            row = conn.execute(
                "SELECT COUNT(*), COALESCE(SUM(LENGTH(data)), 0) FROM updates WHERE doc_id = ?", (doc_id,)
            ).fetchone()
            snap = conn.execute("SELECT LENGTH(data) FROM snapshots WHERE doc_id = ?", (doc_id,)).fetchone()
            counts = _Counts(snap[0] if snap else 0, row[0], row[1])
            self._state.counts[doc_id] = counts
        return counts

    def _execute(self, conn: sqlite3.Connection, op: _Op) -> Any:
        handler: Callable[[sqlite3.Connection, _Op], Any] = getattr(self, f"_op_{op.kind}")
        return handler(conn, op)

    def _refuse_corrupt(self, doc_id: str) -> None:
        if doc_id in self._state.corrupt:
            raise CorruptStoreError(f"document {doc_id!r} is corrupt in {self.path!r}; refusing to write")

    def _op_append(self, conn: sqlite3.Connection, op: _Op) -> None:
        self._refuse_corrupt(op.doc_id)
        counts = self._counts(conn, op.doc_id)
        conn.execute(
            "INSERT INTO updates (doc_id, data, crc) VALUES (?, ?, ?)", (op.doc_id, op.data, _crc(op.data))
        )
        counts.log_updates += 1
        counts.log_bytes += len(op.data)

    def _op_replace(self, conn: sqlite3.Connection, op: _Op) -> None:
        self._refuse_corrupt(op.doc_id)
        self._write_snapshot(conn, op.doc_id, op.data, None)

    def _write_snapshot(self, conn: sqlite3.Connection, doc_id: str, data: bytes, upto: int | None) -> None:
        conn.execute(
            "INSERT INTO snapshots (doc_id, data, crc) VALUES (?, ?, ?) "
            "ON CONFLICT (doc_id) DO UPDATE SET data = excluded.data, crc = excluded.crc",
            (doc_id, data, _crc(data)),
        )
        if upto is None:
            conn.execute("DELETE FROM updates WHERE doc_id = ?", (doc_id,))
            self._state.counts[doc_id] = _Counts(len(data), 0, 0)
        else:
            conn.execute("DELETE FROM updates WHERE doc_id = ? AND id <= ?", (doc_id, upto))
            self._state.counts.pop(doc_id, None)

    def _op_delete(self, conn: sqlite3.Connection, op: _Op) -> None:
        conn.execute("DELETE FROM snapshots WHERE doc_id = ?", (op.doc_id,))
        conn.execute("DELETE FROM updates WHERE doc_id = ?", (op.doc_id,))
        self._state.counts.pop(op.doc_id, None)
        self._state.corrupt.discard(op.doc_id)

    def _op_list(self, conn: sqlite3.Connection, op: _Op) -> list[str]:
        rows = conn.execute("SELECT doc_id FROM snapshots UNION SELECT doc_id FROM updates ORDER BY 1")
        return [r[0] for r in rows]

    def _op_stat(self, conn: sqlite3.Connection, op: _Op) -> DocStat | None:
        c = self._counts(conn, op.doc_id)
        exists = c.log_updates or conn.execute(
            "SELECT 1 FROM snapshots WHERE doc_id = ?", (op.doc_id,)
        ).fetchone()
        if not exists:
            self._state.counts.pop(op.doc_id, None)
            return None
        return DocStat(op.doc_id, c.snapshot_bytes, c.log_updates, c.log_bytes)

    def _read_parts(self, conn: sqlite3.Connection, doc_id: str) -> tuple[list[bytes], int, bool]:
        """Snapshot then log rows, CRC-checked. Returns (parts, last log id, exists)."""
        parts: list[bytes] = []
        exists = False
        snap = conn.execute("SELECT data, crc FROM snapshots WHERE doc_id = ?", (doc_id,)).fetchone()
        if snap is not None:
            exists = True
            self._check_crc(doc_id, bytes(snap[0]), snap[1], "snapshot")
            parts.append(bytes(snap[0]))
        last = 0
        for row_id, data, crc in conn.execute(
            "SELECT id, data, crc FROM updates WHERE doc_id = ? ORDER BY id", (doc_id,)
        ):
            exists = True
            self._check_crc(doc_id, bytes(data), crc, f"update {row_id}")
            parts.append(bytes(data))
            last = row_id
        return parts, last, exists

    def _check_crc(self, doc_id: str, data: bytes, crc: int, what: str) -> None:
        if _crc(data) != crc:
            self._state.corrupt.add(doc_id)
            raise CorruptStoreError(f"document {doc_id!r}: {what} fails its checksum in {self.path!r}")

    def _op_load(self, conn: sqlite3.Connection, op: _Op) -> bytes | None:
        try:
            parts, _, exists = self._read_parts(conn, op.doc_id)
            if not exists:
                return None
            return merge(parts, doc_id=op.doc_id)
        except CorruptStoreError:
            self._state.corrupt.add(op.doc_id)
            raise

    def _maybe_compact(self, conn: sqlite3.Connection, doc_id: str) -> None:
        if doc_id in self._state.corrupt:
            return
        try:
            c = self._counts(conn, doc_id)
            if not self.policy.due(c.snapshot_bytes, c.log_updates, c.log_bytes):
                return
            conn.execute("BEGIN IMMEDIATE")
            try:
                parts, last, exists = self._read_parts(conn, doc_id)
                if exists:
                    self._write_snapshot(conn, doc_id, merge(parts, doc_id=doc_id), last)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            self.compactions += 1
            conn.execute("PRAGMA incremental_vacuum")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except CorruptStoreError as exc:
            self._state.corrupt.add(doc_id)
            log.error("compaction skipped: %s", exc)
        except sqlite3.Error as exc:
            self._state.counts.pop(doc_id, None)
            log.error("compaction of %r failed: %s", doc_id, exc)
        except Exception:  # never let the writer thread die: every later write would hang
            self._state.counts.pop(doc_id, None)
            log.exception("compaction of %r failed unexpectedly", doc_id)
