""":class:`MemoryStore`: the in-memory reference :class:`~crdtsync.storage.DocumentStore`.

Nothing survives the process. Use it for tests and for ``crdtsync relay --store memory:``.
The log of each document is squashed into a snapshot every ``compact_every`` appends, so
``load`` stays fast on a long-running relay.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import StorageError
from .base import DocStat, check_doc_id, check_update
from .merge import merge


@dataclass
class _Entry:
    snapshot: bytes | None = None
    log: list[bytes] = field(default_factory=list)


class MemoryStore:
    """Keeps every document's history in a dict. Satisfies ``InspectableStore``."""

    def __init__(self, *, compact_every: int = 256):
        if compact_every < 1:
            raise ValueError("compact_every must be >= 1")
        self._docs: dict[str, _Entry] = {}
        self._closed = False
        self.compact_every = compact_every
        self.compactions = 0

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError("store is closed")

    async def load(self, doc_id: str) -> bytes | None:
        self._check_open()
        entry = self._docs.get(check_doc_id(doc_id))
        if entry is None:
            return None
        parts = ([entry.snapshot] if entry.snapshot is not None else []) + entry.log
        return merge(parts, doc_id=doc_id)

    async def append(self, doc_id: str, update: bytes) -> None:
        self._check_open()
        data = check_update(update)
        entry = self._docs.setdefault(check_doc_id(doc_id), _Entry())
        entry.log.append(data)
        if len(entry.log) >= self.compact_every:
            parts = ([entry.snapshot] if entry.snapshot is not None else []) + entry.log
            entry.snapshot = merge(parts, doc_id=doc_id)
            entry.log = []
            self.compactions += 1

    async def replace(self, doc_id: str, state: bytes) -> None:
        self._check_open()
        data = check_update(state)
        self._docs[check_doc_id(doc_id)] = _Entry(snapshot=data)

    async def delete(self, doc_id: str) -> None:
        self._check_open()
        self._docs.pop(check_doc_id(doc_id), None)

    async def list_docs(self) -> list[str]:
        self._check_open()
        return sorted(self._docs)

    async def stat(self, doc_id: str) -> DocStat | None:
        self._check_open()
        entry = self._docs.get(check_doc_id(doc_id))
        if entry is None:
            return None
        return DocStat(
            doc_id=doc_id,
            snapshot_bytes=len(entry.snapshot or b""),
            log_updates=len(entry.log),
            log_bytes=sum(map(len, entry.log)),
        )

    def total_size(self) -> int:
        return sum(len(e.snapshot or b"") + sum(map(len, e.log)) for e in self._docs.values())

    async def close(self) -> None:
        self._closed = True
