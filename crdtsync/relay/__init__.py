"""The crdtsync relay: rooms, both wire protocols on one port, auth, limits, metrics.

    from crdtsync.relay import Relay, RelayConfig
    async with Relay(RelayConfig(port=0), SQLiteStore("relay.db")) as relay:
        print(relay.url)

See ``docs/relay.md``. ``crdtsync relay`` runs it from the command line.
"""

from ..errors import RoomUnavailableError
from .auth import Access, Claims, Grant, mint_token, verify_token
from .config import NATIVE_PATH, RelayConfig
from .room import Room, RoomState
from .server import Relay

__all__ = [
    "NATIVE_PATH",
    "Access",
    "Claims",
    "Grant",
    "Relay",
    "RelayConfig",
    "Room",
    "RoomState",
    "RoomUnavailableError",
    "mint_token",
    "verify_token",
]
