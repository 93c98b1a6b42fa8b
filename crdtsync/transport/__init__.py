"""Transports: ordered, reliable, message-framed connections (see :mod:`.base`).

- :func:`memory_pair`: two connected in-process ends (the reference and a test double);
- :func:`connect_websocket` / :class:`WebSocketTransport`: websockets, client or server side.

Every implementation passes :func:`crdtsync.testing.transport_suite.check_transport`.
"""

from .base import CLOSE_NORMAL, CLOSE_TOO_LARGE, ConnectionClosed, Transport
from .memory import MemoryTransport, memory_pair
from .websocket import WebSocketTransport, connect_websocket

__all__ = [
    "CLOSE_NORMAL",
    "CLOSE_TOO_LARGE",
    "ConnectionClosed",
    "MemoryTransport",
    "Transport",
    "WebSocketTransport",
    "connect_websocket",
    "memory_pair",
]
