"""The sync protocols, sans-I/O: bytes in, events and bytes out. Nothing here awaits or
touches a socket or a file.

- :mod:`.lib0`: the Yjs binary primitives (varUint, varUint8Array, UTF-8 varString).
- :mod:`.yjs`: the y-websocket message set, for stock Yjs clients.
- :mod:`.awareness`: the awareness (presence) payload and :class:`AwarenessRegistry`.
- :mod:`.native`: the native msgpack protocol (many documents per connection) and
  :func:`~.native.peek` to route a frame before decoding it.
- :mod:`.state` and :mod:`.connection`: the native connection's state machine and the
  :class:`Connection` object both the client and the relay drive.

``docs/protocol.md`` is the byte-level specification. Message classes share names across the
two protocols (``SyncStep1``...), so import the modules: ``from crdtsync.protocol import native,
yjs``.
"""

from . import awareness, lib0, native, yjs
from .awareness import AwarenessChange, AwarenessLimits, AwarenessRegistry, InvalidAwarenessError
from .connection import DEFAULT_MAX_MESSAGE_SIZE, Connection
from .native import PROTOCOL_VERSION, ErrorCode, MessageType, NativeMessage
from .state import InvalidStateError, Role, State, UnexpectedMessageError
from .yjs import YjsMessage

__all__ = [
    "DEFAULT_MAX_MESSAGE_SIZE",
    "PROTOCOL_VERSION",
    "AwarenessChange",
    "AwarenessLimits",
    "AwarenessRegistry",
    "Connection",
    "ErrorCode",
    "InvalidAwarenessError",
    "InvalidStateError",
    "MessageType",
    "NativeMessage",
    "Role",
    "State",
    "UnexpectedMessageError",
    "YjsMessage",
    "awareness",
    "lib0",
    "native",
    "yjs",
]
