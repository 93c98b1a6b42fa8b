"""The y-websocket message set (Yjs 13, y-websocket 3), one message per binary frame.

Wire forms (``<x>`` is a lib0 varUint8Array, ``<s>`` a lib0 varString; see ``lib0.py``)::

    0 0 <state vector>   SyncStep1
    0 1 <update>         SyncStep2
    0 2 <update>         Update
    1 <awareness>        Awareness (payload format: ``awareness.py``)
    2 0 <s reason>       AuthDenied (y-protocols auth, "permission denied")
    3                    QueryAwareness (answer with every known awareness state)

Use :func:`encode_yjs` / :func:`decode_yjs` for whole messages. A relay that only forwards can
call :func:`peek_yjs` instead: it validates the frame and returns the kind and the payload's
byte span without copying the payload, so an update can be forwarded exactly as received.

Anything else (an unknown type, trailing bytes, truncation) is a
:class:`~crdtsync.errors.FrameError`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TypeAlias

from ..errors import FrameError
from .lib0 import Decoder, encode_var_string, encode_var_uint

__all__ = [
    "AuthDenied",
    "Awareness",
    "QueryAwareness",
    "SyncStep1",
    "SyncStep2",
    "Update",
    "YjsKind",
    "YjsMessage",
    "YjsPeek",
    "decode_yjs",
    "encode_yjs",
    "peek_yjs",
    "update_frame",
]

MESSAGE_SYNC = 0
MESSAGE_AWARENESS = 1
MESSAGE_AUTH = 2
MESSAGE_QUERY_AWARENESS = 3

SYNC_STEP1 = 0
SYNC_STEP2 = 1
SYNC_UPDATE = 2

AUTH_PERMISSION_DENIED = 0


@dataclass(frozen=True, slots=True)
class SyncStep1:
    """``0 0 <sv>``: "here is my state vector, send me what I miss"."""

    state_vector: bytes


@dataclass(frozen=True, slots=True)
class SyncStep2:
    """``0 1 <update>``: the answer to a SyncStep1."""

    update: bytes


@dataclass(frozen=True, slots=True)
class Update:
    """``0 2 <update>``: an incremental document update."""

    update: bytes


@dataclass(frozen=True, slots=True)
class Awareness:
    """``1 <payload>``: an awareness update (decode ``payload`` with ``awareness.py``)."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class AuthDenied:
    """``2 0 <reason>``: the server refused (read-only, bad token)."""

    reason: str


@dataclass(frozen=True, slots=True)
class QueryAwareness:
    """``3``: ask the peer for every awareness state it knows."""


YjsMessage: TypeAlias = SyncStep1 | SyncStep2 | Update | Awareness | AuthDenied | QueryAwareness


class YjsKind(enum.Enum):
    SYNC_STEP1 = "sync_step1"
    SYNC_STEP2 = "sync_step2"
    UPDATE = "update"
    AWARENESS = "awareness"
    AUTH_DENIED = "auth_denied"
    QUERY_AWARENESS = "query_awareness"


_SYNC_KINDS = {SYNC_STEP1: YjsKind.SYNC_STEP1, SYNC_STEP2: YjsKind.SYNC_STEP2, SYNC_UPDATE: YjsKind.UPDATE}
_SYNC_PREFIX = {SyncStep1: SYNC_STEP1, SyncStep2: SYNC_STEP2, Update: SYNC_UPDATE}


@dataclass(frozen=True, slots=True)
class YjsPeek:
    """A validated frame's kind and the ``[start, end)`` span of its payload inside the frame
    (the state vector, update, awareness payload or UTF-8 reason; empty for QueryAwareness)."""

    kind: YjsKind
    start: int
    end: int


def peek_yjs(frame: bytes) -> YjsPeek:
    """Validate ``frame`` as exactly one y-websocket message and locate its payload (no copy)."""
    d = Decoder(frame)
    t = d.read_var_uint()
    if t == MESSAGE_SYNC:
        sub = d.read_var_uint()
        kind = _SYNC_KINDS.get(sub)
        if kind is None:
            raise FrameError(f"unknown sync message type {sub}")
    elif t == MESSAGE_AWARENESS:
        kind = YjsKind.AWARENESS
    elif t == MESSAGE_AUTH:
        sub = d.read_var_uint()
        if sub != AUTH_PERMISSION_DENIED:
            raise FrameError(f"unknown auth message type {sub}")
        kind = YjsKind.AUTH_DENIED
    elif t == MESSAGE_QUERY_AWARENESS:
        d.expect_end()
        return YjsPeek(YjsKind.QUERY_AWARENESS, d.pos, d.pos)
    else:
        raise FrameError(f"unknown y-websocket message type {t}")
    start, end = d.read_span()
    d.expect_end()
    return YjsPeek(kind, start, end)


def decode_yjs(frame: bytes) -> YjsMessage:
    """Decode one y-websocket message; :class:`FrameError` on anything malformed."""
    p = peek_yjs(frame)
    payload = frame[p.start : p.end]
    kind = p.kind
    if kind is YjsKind.UPDATE:
        return Update(payload)
    if kind is YjsKind.SYNC_STEP1:
        return SyncStep1(payload)
    if kind is YjsKind.SYNC_STEP2:
        return SyncStep2(payload)
    if kind is YjsKind.AWARENESS:
        return Awareness(payload)
    if kind is YjsKind.QUERY_AWARENESS:
        return QueryAwareness()
    try:
        return AuthDenied(payload.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise FrameError("auth reason is not valid UTF-8") from exc


def update_frame(update: bytes, *, step2: bool = False) -> bytes:
    """``0 2 <update>`` (or ``0 1 <update>``), built without an intermediate message object."""
    return bytes((MESSAGE_SYNC, SYNC_STEP2 if step2 else SYNC_UPDATE)) + encode_var_uint(len(update)) + update


def encode_yjs(msg: YjsMessage) -> bytes:
    """The frame for one y-websocket message."""
    if isinstance(msg, (SyncStep1, SyncStep2, Update)):
        body = msg.state_vector if isinstance(msg, SyncStep1) else msg.update
        return bytes((MESSAGE_SYNC, _SYNC_PREFIX[type(msg)])) + encode_var_uint(len(body)) + body
    if isinstance(msg, Awareness):
        return bytes((MESSAGE_AWARENESS,)) + encode_var_uint(len(msg.payload)) + msg.payload
    if isinstance(msg, AuthDenied):
        return bytes((MESSAGE_AUTH, AUTH_PERMISSION_DENIED)) + encode_var_string(msg.reason)
    if isinstance(msg, QueryAwareness):
        return bytes((MESSAGE_QUERY_AWARENESS,))
    raise TypeError(f"not a y-websocket message: {msg!r}")
