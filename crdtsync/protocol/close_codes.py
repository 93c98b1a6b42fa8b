"""Every websocket close code crdtsync sends or reads, in one enum (the close codes table of
``docs/relay.md`` lists when each is used)."""

from __future__ import annotations

import enum

__all__ = ["CloseCode"]


class CloseCode(enum.IntEnum):
    NORMAL = 1000
    GOING_AWAY = 1001  # the relay is shutting down
    PROTOCOL_ERROR = 1002
    BAD_DATA = 1003  # a text frame on the y-websocket endpoint
    ABNORMAL = 1006  # no close frame: the connection dropped (never sent, only seen)
    INVALID_PAYLOAD = 1007  # a y-websocket frame or update that does not decode
    POLICY = 1008  # after a fatal native Error; max_rooms on y-websocket
    TOO_BIG = 1009  # a frame over max_message_size
    INTERNAL = 1011
    SERVICE_RESTART = 1012
    SLOW_CONSUMER = 1013  # more than max_queue frames waiting for this reader ("try again later")
    TOKEN_EXPIRED = 4001
    FORBIDDEN = 4003
    ROOM_UNAVAILABLE = 4004
    RATE_LIMITED = 4029  # held back by the rate limit longer than max_throttle
