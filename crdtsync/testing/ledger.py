"""The simulation's bookkeeping: the write ledger (:class:`WriteRecord`) and each peer's durable
storage (:class:`SimStore`).

The ledger is ground truth kept *beside* the protocol: every local transaction any peer makes
is recorded with its binary update and clock range, so the loss check can ask a replica
whether it still holds the write (:mod:`crdtsync.testing.contains`). Nothing in the ledger
travels on the wire; acknowledgements do, as native ``Ack`` frames.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ..origins import Origin
from ..replica import Replica
from .contains import contains_write

__all__ = ["SimStore", "WriteRecord"]


@dataclass
class WriteRecord:
    """A local transaction some peer made: the ledger entry the loss check works from."""

    id: int
    peer: str
    incarnation: int
    doc_id: str
    update: bytes
    origin: Origin
    time: float
    client: int = 0
    start: int = 0
    end: int = 0
    persisted_by: set[str] = field(default_factory=set)
    acked_by: set[str] = field(default_factory=set)

    @property
    def acknowledged(self) -> bool:
        """True once a peer other than the author persisted and integrated it (the document's
        state vector covers it, so it is not pending) and the author heard so."""
        return bool(self.acked_by)

    def contained_in(self, replica: Replica) -> bool:
        """True when ``replica`` holds this write (see :mod:`crdtsync.testing.contains`)."""
        if not replica.has_doc(self.doc_id):
            return self.end <= self.start and self.update == b"\x00\x00"  # only an empty write
        return contains_write(replica.doc(self.doc_id), self.update, self.client, self.start, self.end)


class SimStore:
    """A peer's durable storage: per document, the updates it persisted and the ids of the
    writes they contain. Survives :meth:`SimNetwork.crash`; :meth:`SimNetwork.restart` reloads it."""

    def __init__(self) -> None:
        self.updates: dict[str, list[bytes]] = {}
        self.write_ids: dict[str, set[int]] = {}

    def append(self, doc_id: str, update: bytes, write_ids: Iterable[int]) -> None:
        self.updates.setdefault(doc_id, []).append(update)
        self.write_ids.setdefault(doc_id, set()).update(write_ids)

    def doc_ids(self) -> list[str]:
        return list(self.updates)
