"""The client side of sync: :class:`SyncProvider` connects a Replica to a relay.

- :mod:`.provider`: :class:`SyncProvider`, the async shell (connect, reconnect, heartbeat,
  presence timers) around the sans-I/O :class:`~crdtsync.protocol.client_session.ClientSession`,
  which makes every protocol decision (subscribe, answer, number, acknowledge, resync);
- :mod:`.status`: :class:`SyncStatus`, :class:`ConnectionState`;
- :mod:`.backoff`: :class:`Backoff` (exponential, with jitter);
- :mod:`.awareness`: :class:`DocAwareness` (presence per document);
- :mod:`.docstate`: what the application wants of each document (subscribed, retained, presence);
- :mod:`.memory_relay`: :class:`MemoryRelay`, an in-process relay for tests and examples;
- :mod:`.client_binding`: :func:`bind_client`, selective subscription driven by a QueryClient's cache.

See ``docs/sync.md``.
"""

from .awareness import DocAwareness
from .backoff import Backoff
from .client_binding import ClientSync, bind_client
from .memory_relay import MemoryRelay
from .provider import SyncProvider
from .status import ConnectionState, SyncStatus

__all__ = [
    "Backoff",
    "ClientSync",
    "ConnectionState",
    "DocAwareness",
    "MemoryRelay",
    "SyncProvider",
    "SyncStatus",
    "bind_client",
]
