"""In-memory replica wiring without faults: :func:`connected_pair`.

For faults, delays, partitions and crashes use :class:`~crdtsync.testing.network.SimNetwork`.
"""

from __future__ import annotations

from collections.abc import Callable

from ..origins import Origin, OriginKind, remote_origin
from ..replica import Replica

__all__ = ["connect", "connected_pair"]


def connect(a: Replica, b: Replica, *, a_name: str = "a", b_name: str = "b") -> Callable[[], None]:
    """Forward every committed transaction of ``a`` to ``b`` and back, synchronously.

    Documents that already exist on either side are synced first (both ways). Updates that
    arrive from the other side (origin ``REMOTE``) are not sent back, so there is no echo.
    Returns a function that disconnects the two.
    """
    for doc_id in set(a.doc_ids()) | set(b.doc_ids()):
        b.apply_update(doc_id, a.get_update(doc_id, b.state_vector(doc_id)), origin=remote_origin(a_name))
        a.apply_update(doc_id, b.get_update(doc_id, a.state_vector(doc_id)), origin=remote_origin(b_name))

    def forward(src_name: str, dst: Replica) -> Callable[[str, bytes, Origin], None]:
        def on_update(doc_id: str, update: bytes, origin: Origin) -> None:
            if origin.kind is OriginKind.REMOTE:
                return
            dst.apply_update(doc_id, update, origin=remote_origin(src_name))

        return on_update

    stop_a = a.on_update(forward(a_name, b))
    stop_b = b.on_update(forward(b_name, a))

    def disconnect() -> None:
        stop_a()
        stop_b()

    return disconnect


def connected_pair() -> tuple[Replica, Replica, Callable[[], None]]:
    """Two fresh replicas joined by :func:`connect`: ``(a, b, disconnect)``."""
    a, b = Replica(), Replica()
    return a, b, connect(a, b)
