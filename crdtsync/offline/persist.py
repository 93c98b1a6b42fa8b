"""Replica persistence in SQLite at a path the app chooses: :class:`ReplicaPersister`.

::

    client = QueryClient()
    persister = ReplicaPersister(client, "~/.cache/my-app/cache.db", buster="v3", max_age=86400)
    report = await persister.open()      # documents and query metadata are back, before any network
    ...                                  # every change is written, at most once per `throttle`
    await persister.close()              # writes what is pending

What is stored, in one :class:`~crdtsync.storage.SQLiteStore` file (WAL, CRC-checked rows,
group commit, compaction by size and count): every document of the replica as Yjs updates,
plus one extra document (:data:`META_DOC`) holding the buster, the time of the last write and
the metadata of the successful queries (:mod:`.meta`).

- **Throttled writes**: changes are collected and written together once per ``throttle``
  seconds (on the injectable clock): the updates of each document are merged into one, so a
  burst of 10,000 edits costs one append per document, not 10,000.
- **max_age / buster**: a cache last written more than ``max_age`` seconds ago, or written
  with another ``buster`` string (an incompatible app version), is discarded at ``open``.
- **Compaction**: the store squashes each document's log by size and count (``policy``);
  :meth:`ReplicaPersister.compact` rewrites every document as one snapshot on demand.
- **Corruption**: a file that is not SQLite, is truncated, fails ``quick_check``, or holds
  rows that fail their checksum or do not decode is moved aside (``<path>.corrupt-<time>``,
  for an operator) and the replica starts clean, with a warning on the
  ``crdtsync.offline`` logger. ``open`` never raises for a bad file; if even a fresh file
  cannot be created, persistence is disabled (with an error logged) and the app runs on.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgpack
from pycrdt import Doc, Map

from ..clock import Clock, SystemClock, TimerHandle
from ..errors import CorruptStoreError, StorageError
from ..origins import Origin, OriginKind
from ..replica import Replica
from ..storage import CompactionPolicy, SQLiteStore
from ..storage.merge import merge
from . import meta as meta_mod

if TYPE_CHECKING:
    from ..client import QueryClient
    from ..query.query import Query

log = logging.getLogger("crdtsync.offline")

META_DOC = "crdtsync.offline:meta"
FORMAT_VERSION = 1
DISK_ORIGIN = Origin(OriginKind.RESTORE, "disk")


class RestoreOutcome(enum.Enum):
    RESTORED = "restored"  # cached data is back
    EMPTY = "empty"  # no file, or an empty one
    EXPIRED = "expired"  # older than max_age: discarded
    BUSTED = "busted"  # written with another buster: discarded
    CORRUPT = "corrupt"  # moved aside; started clean
    DISABLED = "disabled"  # could not open any file: running without persistence


@dataclass(frozen=True, slots=True)
class RestoreReport:
    """What :meth:`ReplicaPersister.open` found. ``moved_to`` names a quarantined bad file."""

    outcome: RestoreOutcome
    docs: int = 0
    queries: int = 0
    reason: str = ""
    moved_to: str | None = None


class ReplicaPersister:
    """Keeps a replica (and its client's query metadata) in one SQLite file. See the module
    docstring; call :meth:`open` first and :meth:`close` last."""

    def __init__(
        self,
        target: QueryClient | Replica,
        path: str | os.PathLike[str],
        *,
        buster: str = "",
        max_age: float = 24 * 3600.0,
        throttle: float = 1.0,
        policy: CompactionPolicy | None = None,
        clock: Clock | None = None,
        should_persist_query: Callable[[Query], bool] = meta_mod.default_should_keep,
    ) -> None:
        if throttle < 0 or max_age <= 0:
            raise ValueError("throttle must be >= 0 and max_age > 0")
        if isinstance(target, Replica):
            self.client: QueryClient | None = None
            self.replica = target
        else:
            self.client = target
            self.replica = target.replica
        self.path = Path(os.path.expanduser(os.fspath(path)))
        self.buster = buster
        self.max_age = max_age
        self.throttle = throttle
        self.policy = policy
        self.clock: Clock = clock or (self.client.clock if self.client is not None else SystemClock())
        self.should_persist_query = should_persist_query
        self.store: SQLiteStore | None = None
        self.flushes = 0  # flushes that wrote something
        self.appends = 0  # document appends written
        self._pending: dict[str, list[bytes]] = {}
        self._meta_dirty = False
        self._timer: TimerHandle | None = None
        self._flush_task: asyncio.Task[None] | None = None
        self._unsubs: list[Callable[[], None]] = []
        self._lock = asyncio.Lock()

    # -- open / restore ----------------------------------------------------------------------
    async def open(self) -> RestoreReport:
        """Open the file, restore what it holds, start writing changes. Never raises for a
        bad file (see :class:`RestoreReport`)."""
        # What the replica already holds (a hydrate, a fetch, a channel join before open) was
        # never seen by _on_update: write it with the first flush, or it would be lost on restart.
        held = {doc_id: self.replica.get_update(doc_id) for doc_id in self.replica.doc_ids()}
        report = await self._open_and_restore()
        self._unsubs.append(self.replica.on_update(self._on_update))
        if self.store is not None:
            for doc_id, state in held.items():
                if state not in (b"\x00\x00", b"\x00\x00\x00"):
                    self._pending.setdefault(doc_id, []).insert(0, state)
        if self.client is not None:
            self._unsubs.append(self.client.query_cache.subscribe(self._on_cache_event))
        if self.store is not None:
            self._meta_dirty = True
            await self.flush()  # record buster and time now, so a later open trusts the file
        return report

    async def _open_and_restore(self) -> RestoreReport:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.path.exists() and self.path.stat().st_size > 0:
                _quick_check(self.path)
            self.store = SQLiteStore(self.path, policy=self.policy)
            docs, metas, written = await self._load_all()
        except (CorruptStoreError, StorageError, sqlite3.Error, OSError, ValueError) as exc:
            return await self._quarantine(f"{type(exc).__name__}: {exc}")
        if not docs and written is None:
            return RestoreReport(RestoreOutcome.EMPTY)
        if written is None:
            return await self._discard(RestoreOutcome.BUSTED, "no cache metadata (not written by this library)")
        buster, written_at = written
        if buster != self.buster:
            return await self._discard(RestoreOutcome.BUSTED, f"buster {buster!r} != {self.buster!r}")
        if self.clock.now() - written_at > self.max_age:
            age = self.clock.now() - written_at
            return await self._discard(RestoreOutcome.EXPIRED, f"last written {age:.0f} s ago")
        if not docs:
            return RestoreReport(RestoreOutcome.EMPTY)
        with self.replica.batch(origin=DISK_ORIGIN):
            for doc_id, state in docs.items():
                self.replica.apply_update(doc_id, state, origin=DISK_ORIGIN)
        restored = meta_mod.restore(self.client, metas, only_newer=True) if self.client is not None else []
        log.info("restored %d documents and %d queries from %s", len(docs), len(restored), self.path)
        return RestoreReport(RestoreOutcome.RESTORED, docs=len(docs), queries=len(restored))

    async def _load_all(self) -> tuple[dict[str, bytes], list[meta_mod.QueryMeta], tuple[str, float] | None]:
        assert self.store is not None
        docs: dict[str, bytes] = {}
        metas: list[meta_mod.QueryMeta] = []
        written: tuple[str, float] | None = None
        for doc_id in await self.store.list_docs():
            state = await self.store.load(doc_id)
            if state is None:
                continue
            if doc_id == META_DOC:
                written, metas = _decode_meta_doc(state)
            else:
                docs[doc_id] = state
        return docs, metas, written

    async def _discard(self, outcome: RestoreOutcome, reason: str) -> RestoreReport:
        log.warning("discarding the cache in %s: %s", self.path, reason)
        assert self.store is not None
        for doc_id in await self.store.list_docs():
            await self.store.delete(doc_id)
        return RestoreReport(outcome, reason=reason)

    async def _quarantine(self, reason: str) -> RestoreReport:
        if self.store is not None:
            with contextlib.suppress(Exception):
                await self.store.close()
            self.store = None
        moved = f"{self.path}.corrupt-{int(time.time() * 1000)}"
        log.warning("the cache file %s is corrupt (%s); moving it to %s and starting with an empty cache",
                    self.path, reason, moved)
        try:
            for suffix in ("", "-wal", "-shm"):
                src = Path(f"{self.path}{suffix}")
                if src.exists():
                    os.replace(src, f"{moved}{suffix}")
            self.store = SQLiteStore(self.path, policy=self.policy)
        except (OSError, StorageError) as exc:
            log.error("cannot create a fresh cache file at %s (%s); running without persistence", self.path, exc)
            self.store = None
            return RestoreReport(RestoreOutcome.DISABLED, reason=f"{reason}; then {exc}", moved_to=moved)
        return RestoreReport(RestoreOutcome.CORRUPT, reason=reason, moved_to=moved)

    # -- writing -----------------------------------------------------------------------------
    def _on_update(self, doc_id: str, update: bytes, origin: Origin) -> None:
        if origin == DISK_ORIGIN or self.store is None:
            return
        self._pending.setdefault(doc_id, []).append(update)
        self._schedule()

    def _on_cache_event(self, event: Any) -> None:
        if self.store is None:
            return
        self._meta_dirty = True
        self._schedule()

    def _schedule(self) -> None:
        if self._timer is None:
            self._timer = self.clock.call_later(self.throttle, self._fire)

    def _fire(self) -> None:
        self._timer = None
        task = asyncio.get_running_loop().create_task(self.flush())
        self._flush_task = task

    async def wait_flushed(self) -> None:
        """Wait for the write the throttle timer started (if any) to finish."""
        task = self._flush_task
        if task is not None:
            await asyncio.shield(task)

    @property
    def pending_updates(self) -> int:
        """Updates waiting for the next write."""
        return sum(len(v) for v in self._pending.values())

    async def flush(self) -> None:
        """Write everything pending now (one merged append per changed document, plus the
        metadata). Storage errors are logged and the changes kept for the next try."""
        async with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            store = self.store
            if store is None or (not self._pending and not self._meta_dirty):
                return
            pending, self._pending = self._pending, {}
            write_meta, self._meta_dirty = True, False  # it also records the time of this write
            ops = [store.append(doc_id, merge(ups, doc_id=doc_id)) for doc_id, ups in pending.items()]
            if write_meta:
                ops.append(store.replace(META_DOC, self._meta_doc()))
            results = await asyncio.gather(*ops, return_exceptions=True)
            failed = [r for r in results if isinstance(r, BaseException)]
            if failed:
                log.error("writing the cache to %s failed (%s); will retry", self.path, failed[0])
                for doc_id, ups in pending.items():
                    self._pending.setdefault(doc_id, [])[:0] = ups
                self._meta_dirty = self._meta_dirty or write_meta
                self._schedule()
                return
            self.flushes += 1
            self.appends += len(pending)

    def _meta_doc(self) -> bytes:
        metas = meta_mod.capture(self.client, should_keep=self.should_persist_query) if self.client else []
        payload = msgpack.packb([FORMAT_VERSION, self.buster, self.clock.now(), meta_mod.pack(metas)],
                                use_bin_type=True)
        doc: Doc[Any] = Doc()
        doc.get("m", type=Map)["b"] = bytes(payload)
        return bytes(doc.get_update())

    async def compact(self) -> None:
        """Flush, then rewrite each stored document as one snapshot of the replica's state."""
        await self.flush()
        if self.store is None:
            return
        for doc_id in self.replica.doc_ids():
            await self.store.replace(doc_id, self.replica.get_update(doc_id))

    async def close(self) -> None:
        """Write what is pending, stop listening, close the file. Idempotent."""
        for unsub in self._unsubs:
            unsub()
        self._unsubs.clear()
        await self.flush()
        if self._flush_task is not None:
            with contextlib.suppress(Exception):
                await self._flush_task
        if self.store is not None:
            store, self.store = self.store, None
            await store.close()


def _quick_check(path: Path) -> None:
    """Raise ``CorruptStoreError`` unless SQLite's ``quick_check`` passes on ``path``."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise CorruptStoreError(f"cannot open: {exc}") from exc
    try:
        rows = conn.execute("PRAGMA quick_check").fetchall()
    except sqlite3.DatabaseError as exc:
        raise CorruptStoreError(str(exc)) from exc
    finally:
        conn.close()
    if rows != [("ok",)]:
        raise CorruptStoreError(f"quick_check: {rows[:3]!r}")


def _decode_meta_doc(state: bytes) -> tuple[tuple[str, float], list[meta_mod.QueryMeta]]:
    doc: Doc[Any] = Doc()
    try:
        doc.apply_update(state)
        payload = doc.get("m", type=Map).get("b")
        raw = msgpack.unpackb(bytes(payload), raw=False, use_list=True) if payload is not None else None
    except Exception as exc:
        raise CorruptStoreError(f"cache metadata does not decode: {exc}") from exc
    if not (isinstance(raw, list) and len(raw) >= 4 and raw[0] == FORMAT_VERSION
            and isinstance(raw[1], str) and type(raw[2]) in (int, float)):
        raise CorruptStoreError("cache metadata is malformed or of another format version")
    return (raw[1], float(raw[2])), meta_mod.unpack(raw[3])
