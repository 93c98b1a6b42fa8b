"""Origins: every change to a document says where it came from.

The :class:`~crdtsync.replica.Replica` tags each transaction with an :class:`Origin`, so
observers, undo, persistence and conflict detection can tell a fetched value from a local
optimistic edit, a remote peer's update or a restore from disk.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class OriginKind(enum.Enum):
    FETCH = "fetch"  # data written from a query function's result
    LOCAL = "local"  # set_query_data and other direct local writes
    MUTATION = "mutation"  # an optimistic edit of one mutation (``id`` is the mutation id)
    ROLLBACK = "rollback"  # the undo of a failed mutation's edit
    REMOTE = "remote"  # an update received from a peer (``id`` names the peer when known)
    RESTORE = "restore"  # loaded from persistence or hydrated


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a change came from. Frozen and hashable, so it can key dictionaries."""

    kind: OriginKind
    id: str | None = None

    @property
    def is_local(self) -> bool:
        """True for changes made in this process (fetch, local, mutation, rollback)."""
        return self.kind in (OriginKind.FETCH, OriginKind.LOCAL, OriginKind.MUTATION, OriginKind.ROLLBACK)

    def __str__(self) -> str:
        return self.kind.value if self.id is None else f"{self.kind.value}:{self.id}"


FETCH = Origin(OriginKind.FETCH)
LOCAL = Origin(OriginKind.LOCAL)
RESTORE = Origin(OriginKind.RESTORE)
REMOTE = Origin(OriginKind.REMOTE)


def mutation_origin(mutation_id: str | int) -> Origin:
    return Origin(OriginKind.MUTATION, str(mutation_id))


def remote_origin(peer: str | None = None) -> Origin:
    return Origin(OriginKind.REMOTE, peer)
