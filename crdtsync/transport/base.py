"""The :class:`Transport` protocol: an ordered, reliable, message-framed byte pipe.

Five members, all a sync provider (or any protocol pump) needs:

- ``await send(frame)``: queue one binary frame for the peer. Raises
  :class:`~crdtsync.errors.TransportError` once the transport is closed (either side).
- ``await recv()``: the next frame from the peer, as ``bytes``, in order. After the *peer*
  closed, frames it sent before closing are still returned, then :class:`ConnectionClosed`
  (a ``TransportError``) is raised; after a *local* ``close()`` it raises at once.
- ``await close(code=1000, reason="")``: close both directions; idempotent.
- ``closed``: True once either side closed (or the connection failed).
- ``await wait_closed()``: returns once the transport is closed.

Implementations: :func:`~crdtsync.transport.memory.memory_pair` (in-process, the reference) and
:func:`~crdtsync.transport.websocket.connect_websocket`. Every implementation passes
:func:`crdtsync.testing.transport_suite.check_transport`.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ..errors import ConnectionClosed
from ..protocol.close_codes import CloseCode

__all__ = ["CLOSE_NORMAL", "CLOSE_TOO_LARGE", "ConnectionClosed", "Transport"]

CLOSE_NORMAL = CloseCode.NORMAL
CLOSE_TOO_LARGE = CloseCode.TOO_BIG



@runtime_checkable
class Transport(Protocol):
    """An ordered, reliable, message-framed connection to one peer."""

    async def send(self, frame: bytes) -> None: ...

    async def recv(self) -> bytes: ...

    async def close(self, code: int = CLOSE_NORMAL, reason: str = "") -> None: ...

    @property
    def closed(self) -> bool: ...

    async def wait_closed(self) -> None: ...
