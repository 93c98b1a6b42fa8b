"""The :class:`DocumentStore` protocol: where a relay (or any peer) keeps documents durably.

A store maps an opaque document id (a non-empty ``str``) to the document's history, kept as
Yjs binary updates. It knows nothing about rooms, peers or the wire.

The six methods::

    await store.load(doc_id)            -> bytes | None   the merged state (one Yjs update)
    await store.append(doc_id, update)  -> None           durable once it returns
    await store.replace(doc_id, state)  -> None           swap the whole history for one state
    await store.delete(doc_id)          -> None           forget the document
    await store.list_docs()             -> list[str]      every stored document id, sorted
    await store.close()                 -> None           flush and release resources

Call :meth:`~DocumentStore.load` when a document is first needed, :meth:`~DocumentStore.append`
for every update after that, and :meth:`~DocumentStore.close` on shutdown. Stores that keep an
update log compact it themselves (by size and count, see :class:`~crdtsync.storage.SQLiteStore`);
callers never have to call :meth:`~DocumentStore.replace` for that.

Stores that can describe what they hold also implement :class:`InspectableStore` (``stat``),
which ``crdtsync inspect`` and the relay's metrics use.

Errors: :class:`~crdtsync.errors.StorageError` when a read or write fails,
:class:`~crdtsync.errors.CorruptStoreError` when stored bytes do not decode (the store then
refuses every later write to that document rather than bury the evidence).
Every implementation passes :func:`crdtsync.testing.storage_suite.check_storage`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ..errors import StorageError

MAX_DOC_ID_BYTES = 1024


@dataclass(frozen=True, slots=True)
class DocStat:
    """What a store holds for one document.

    ``snapshot_bytes``: size of the compacted state; ``log_updates`` / ``log_bytes``: the
    updates appended since; ``compactions``: how many times this document was compacted by
    this store instance (not persisted).
    """

    doc_id: str
    snapshot_bytes: int
    log_updates: int
    log_bytes: int

    @property
    def total_bytes(self) -> int:
        return self.snapshot_bytes + self.log_bytes


@runtime_checkable
class DocumentStore(Protocol):
    """Durable storage of documents as Yjs updates. See the module docstring."""

    async def load(self, doc_id: str) -> bytes | None:
        """Return the merged state of ``doc_id`` as one Yjs update, or ``None`` if never stored.

        Raises :class:`~crdtsync.errors.CorruptStoreError` if stored bytes do not decode.
        """
        ...

    async def append(self, doc_id: str, update: bytes) -> None:
        """Add one Yjs update to the document's history. Durable when this returns."""
        ...

    async def replace(self, doc_id: str, state: bytes) -> None:
        """Atomically replace the whole history of ``doc_id`` with ``state`` (one update)."""
        ...

    async def delete(self, doc_id: str) -> None:
        """Remove everything stored for ``doc_id``. Deleting an unknown id is not an error."""
        ...

    async def list_docs(self) -> list[str]:
        """Every document id with stored data, sorted."""
        ...

    async def close(self) -> None:
        """Finish pending writes and release resources. Later calls raise StorageError."""
        ...


@runtime_checkable
class InspectableStore(DocumentStore, Protocol):
    """A store that can report sizes (``crdtsync inspect``, relay metrics)."""

    async def stat(self, doc_id: str) -> DocStat | None:
        """Sizes of what is stored for ``doc_id``, or ``None`` if nothing is."""
        ...

    def total_size(self) -> int:
        """Bytes the store occupies (file sizes on disk, or bytes held in memory)."""
        ...


def check_doc_id(doc_id: object) -> str:
    """Validate a document id (non-empty str, at most 1 KiB of UTF-8, no NUL); return it."""
    if not isinstance(doc_id, str) or not doc_id:
        raise StorageError(f"document id must be a non-empty str, got {doc_id!r}")
    if "\x00" in doc_id:
        raise StorageError("document id must not contain NUL")
    try:
        size = len(doc_id.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise StorageError("document id is not valid Unicode") from exc
    if size > MAX_DOC_ID_BYTES:
        raise StorageError(f"document id longer than {MAX_DOC_ID_BYTES} bytes")
    return doc_id


def check_update(update: object) -> bytes:
    """Validate that ``update`` is bytes (a Yjs update); return it as ``bytes``."""
    if not isinstance(update, (bytes, bytearray, memoryview)):
        raise StorageError(f"update must be bytes, got {type(update).__name__}")
    return bytes(update)
