"""The native crdtsync protocol: msgpack envelopes, many documents on one connection.

Every frame (one websocket binary message) is one msgpack **array**::

    [type, doc_id, field, field, ...]

- ``type``: a :class:`MessageType` (a small positive int);
- ``doc_id``: the document's id (a non-empty str) for document messages, ``nil`` otherwise;
- the fields follow, per type; binary payloads (updates, state vectors, awareness) are msgpack
  ``bin``, so a router reads the first two elements with :func:`peek` and never touches the
  payload. Trailing extra fields are ignored (room for minor-version additions); missing or
  mistyped ones are a :class:`~crdtsync.errors.FrameError`.

====  ===========  ========================================================================
type  name         fields after ``doc_id``
====  ===========  ========================================================================
0     Hello        ``[major, minor]``, token (str|nil), client info (map str -> scalar)
1     Welcome      ``[major, minor]``, session id (str), server info (map str -> scalar)
2     Subscribe    state vector (bin)
3     Unsubscribe  (none)
4     SyncStep1    state vector (bin)
5     SyncStep2    update (bin), seq (uint)
6     Update       update (bin), seq (uint)
7     Ack          seq (uint)
8     Awareness    payload (bin, the y-protocols awareness encoding)
9     Error        code (str), message (str), fatal (bool); doc_id may be nil
10    Ping         nonce (uint)
11    Pong         nonce (uint)
====  ===========  ========================================================================

The Hello layout is frozen across major versions (type 0, nil, ``[major, minor]`` first), so a
server can always read the version of a client newer than itself and answer with an Error
``unsupported_version``. ``docs/protocol.md`` has the byte-level spec, the handshake and the
meaning of every message; ``connection.py`` holds the state machine that drives it.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import msgpack

from ..errors import FrameError, MessageTooLargeError, PermissionDeniedError, RemoteError

__all__ = [
    "MAX_DOC_ID_BYTES",
    "PROTOCOL_VERSION",
    "Ack",
    "Awareness",
    "Error",
    "ErrorCode",
    "Header",
    "Hello",
    "MessageType",
    "NativeMessage",
    "Ping",
    "Pong",
    "Subscribe",
    "SyncStep1",
    "SyncStep2",
    "Unsubscribe",
    "Update",
    "Welcome",
    "decode",
    "encode",
    "peek",
]

PROTOCOL_VERSION: tuple[int, int] = (1, 0)
"""(major, minor). Peers with different majors cannot talk; the minor is negotiated down."""

MAX_DOC_ID_BYTES = 1024
MAX_UINT = 2**64 - 1

Scalar: TypeAlias = "str | int | float | bool | None"


class MessageType(enum.IntEnum):
    HELLO = 0
    WELCOME = 1
    SUBSCRIBE = 2
    UNSUBSCRIBE = 3
    SYNC_STEP1 = 4
    SYNC_STEP2 = 5
    UPDATE = 6
    ACK = 7
    AWARENESS = 8
    ERROR = 9
    PING = 10
    PONG = 11


class ErrorCode(enum.StrEnum):
    """Machine-readable reasons carried by :class:`Error`. Unknown codes from a newer peer are
    kept as plain strings."""

    BAD_FRAME = "bad_frame"  # a frame did not decode, or broke the state machine
    UNSUPPORTED_VERSION = "unsupported_version"
    UNAUTHORIZED = "unauthorized"  # missing, malformed, badly signed or expired token
    FORBIDDEN = "forbidden"  # the token does not grant this (a write on a read-only grant)
    TOO_LARGE = "too_large"  # a frame exceeds the peer's max message size
    RATE_LIMITED = "rate_limited"
    QUEUE_FULL = "queue_full"  # we could not keep up sending to you (slow consumer)
    ROOM_UNAVAILABLE = "room_unavailable"  # the document failed to load; try later
    LIMIT_EXCEEDED = "limit_exceeded"  # too many rooms, connections or subscriptions
    NOT_SUBSCRIBED = "not_subscribed"  # a document message for a document not subscribed
    BAD_UPDATE = "bad_update"  # an update or state vector did not apply
    NOT_OWNER = "not_owner"  # presence of a client id another connection holds
    RESYNC_REQUIRED = "resync_required"  # an earlier write on the document was refused: Subscribe again first
    SHUTTING_DOWN = "shutting_down"
    INTERNAL = "internal"


_PERMISSION_CODES = frozenset({ErrorCode.UNAUTHORIZED, ErrorCode.FORBIDDEN})


# -- messages ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hello:
    """Client -> server, first frame. ``token`` authenticates; ``client`` describes the client
    (name, version, ...: short scalars only)."""

    token: str | None = None
    version: tuple[int, int] = PROTOCOL_VERSION
    client: Mapping[str, Scalar] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Welcome:
    """Server -> client: the handshake succeeded. ``version`` is the negotiated version;
    ``session_id`` names this connection (the peer id in logs and origins); ``info`` carries the
    server's limits (``max_message_size``, ...)."""

    session_id: str
    version: tuple[int, int] = PROTOCOL_VERSION
    info: Mapping[str, Scalar] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Subscribe:
    """Client -> server: start receiving ``doc_id``; doubles as a SyncStep1 with the client's
    state vector. The server answers SyncStep2 (what the client misses) then SyncStep1."""

    doc_id: str
    state_vector: bytes


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    doc_id: str


@dataclass(frozen=True, slots=True)
class SyncStep1:
    """Here is my state vector: the peer answers with a SyncStep2."""

    doc_id: str
    state_vector: bytes


@dataclass(frozen=True, slots=True)
class SyncStep2:
    """The answer to a SyncStep1. From a client, a ``seq`` > 0 asks for an :class:`Ack`."""

    doc_id: str
    update: bytes
    seq: int = 0


@dataclass(frozen=True, slots=True)
class Update:
    """An incremental update. From a client, ``seq`` > 0 asks for an :class:`Ack` once the update
    is durable. A relay forwards the frame unchanged, so receivers ignore ``seq``."""

    doc_id: str
    update: bytes
    seq: int = 0


@dataclass(frozen=True, slots=True)
class Ack:
    """Server -> client: every write on ``doc_id`` with seq <= ``seq`` from this connection is
    durable (cumulative)."""

    doc_id: str
    seq: int


@dataclass(frozen=True, slots=True)
class Awareness:
    doc_id: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class Error:
    """A typed error. ``fatal``: the sender closes the connection after it. ``seq`` > 0 names
    the write (Update or SyncStep2 with that seq, on ``doc_id``) that was refused: it was not
    applied, and no later Ack on that document covers it."""

    code: str
    message: str = ""
    doc_id: str | None = None
    fatal: bool = False
    seq: int = 0

    def exception(self) -> RemoteError:
        """This error as an exception (:class:`PermissionDeniedError` for unauthorized/forbidden)."""
        cls = PermissionDeniedError if self.code in _PERMISSION_CODES else RemoteError
        return cls(self.code, self.message, doc_id=self.doc_id, seq=self.seq)


@dataclass(frozen=True, slots=True)
class Ping:
    nonce: int


@dataclass(frozen=True, slots=True)
class Pong:
    nonce: int


NativeMessage: TypeAlias = (
    Hello | Welcome | Subscribe | Unsubscribe | SyncStep1 | SyncStep2 | Update | Ack | Awareness | Error | Ping | Pong
)

DOC_MESSAGES = (Subscribe, Unsubscribe, SyncStep1, SyncStep2, Update, Ack, Awareness)

# -- encoding ------------------------------------------------------------------------------


def _pack(obj: list[Any]) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def encode(msg: NativeMessage) -> bytes:
    """The frame for ``msg`` (a msgpack array, see the module docstring)."""
    if isinstance(msg, Update):
        return _pack([MessageType.UPDATE, msg.doc_id, msg.update, msg.seq])
    if isinstance(msg, Awareness):
        return _pack([MessageType.AWARENESS, msg.doc_id, msg.payload])
    if isinstance(msg, Ack):
        return _pack([MessageType.ACK, msg.doc_id, msg.seq])
    if isinstance(msg, SyncStep1):
        return _pack([MessageType.SYNC_STEP1, msg.doc_id, msg.state_vector])
    if isinstance(msg, SyncStep2):
        return _pack([MessageType.SYNC_STEP2, msg.doc_id, msg.update, msg.seq])
    if isinstance(msg, Subscribe):
        return _pack([MessageType.SUBSCRIBE, msg.doc_id, msg.state_vector])
    if isinstance(msg, Unsubscribe):
        return _pack([MessageType.UNSUBSCRIBE, msg.doc_id])
    if isinstance(msg, Ping):
        return _pack([MessageType.PING, None, msg.nonce])
    if isinstance(msg, Pong):
        return _pack([MessageType.PONG, None, msg.nonce])
    if isinstance(msg, Error):
        fields: list[Any] = [MessageType.ERROR, msg.doc_id, str(msg.code), msg.message, msg.fatal]
        if msg.seq:
            fields.append(msg.seq)  # optional: older decoders ignore a trailing field
        return _pack(fields)
    if isinstance(msg, Hello):
        return _pack([MessageType.HELLO, None, list(msg.version), msg.token, dict(msg.client)])
    if isinstance(msg, Welcome):
        return _pack([MessageType.WELCOME, None, list(msg.version), msg.session_id, dict(msg.info)])
    raise TypeError(f"not a native message: {msg!r}")


# -- peeking -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Header:
    """The routing part of a frame: its type and document id (None for connection messages)."""

    type: MessageType
    doc_id: str | None


def _peek_str(frame: bytes, pos: int) -> tuple[str | None, int]:
    n = len(frame)
    if pos >= n:
        raise FrameError("truncated frame: no document id")
    b = frame[pos]
    if b == 0xC0:
        return None, pos + 1
    if 0xA0 <= b <= 0xBF:
        length, pos = b & 0x1F, pos + 1
    elif b == 0xD9 and pos + 2 <= n:
        length, pos = frame[pos + 1], pos + 2
    elif b == 0xDA and pos + 3 <= n:
        length, pos = int.from_bytes(frame[pos + 1 : pos + 3], "big"), pos + 3
    elif b == 0xDB and pos + 5 <= n:
        length, pos = int.from_bytes(frame[pos + 1 : pos + 5], "big"), pos + 5
    else:
        raise FrameError("the document id is not a string or nil")
    if pos + length > n:
        raise FrameError("truncated frame: document id")
    try:
        return frame[pos : pos + length].decode("utf-8"), pos + length
    except UnicodeDecodeError as exc:
        raise FrameError("the document id is not valid UTF-8") from exc


def peek(frame: bytes) -> Header:
    """Read only the type and document id of ``frame`` (no payload is decoded or copied).

    Raises :class:`FrameError` when those two are malformed; the rest of the frame is checked
    only by :func:`decode`."""
    n = len(frame)
    if n == 0:
        raise FrameError("empty frame")
    b = frame[0]
    if 0x90 <= b <= 0x9F:
        count, pos = b & 0x0F, 1
    elif b == 0xDC and n >= 3:
        count, pos = int.from_bytes(frame[1:3], "big"), 3
    elif b == 0xDD and n >= 5:
        count, pos = int.from_bytes(frame[1:5], "big"), 5
    else:
        raise FrameError("a frame is a msgpack array")
    if count < 2:
        raise FrameError("a frame has at least a type and a document id")
    if pos >= n:
        raise FrameError("truncated frame: no type")
    t = frame[pos]
    if t == 0xCC and pos + 1 < n:  # uint8 (a non-minimal but valid encoding)
        t, pos = frame[pos + 1], pos + 2
    elif t <= 0x7F:
        pos += 1
    else:
        raise FrameError("the message type is not a small positive integer")
    try:
        mtype = MessageType(t)
    except ValueError:
        raise FrameError(f"unknown message type {t}") from None
    doc_id, _ = _peek_str(frame, pos)
    return Header(mtype, doc_id)


# -- decoding ------------------------------------------------------------------------------


def _uint(v: Any, what: str) -> int:
    if type(v) is not int or v < 0 or v > MAX_UINT:
        raise FrameError(f"{what} must be an unsigned integer")
    return v


def _bin(v: Any, what: str) -> bytes:
    if type(v) is not bytes:
        raise FrameError(f"{what} must be msgpack bin")
    return v


def _str(v: Any, what: str) -> str:
    if type(v) is not str:
        raise FrameError(f"{what} must be a string")
    return v


def _doc_id(v: Any) -> str:
    if type(v) is not str or not v:
        raise FrameError("a document message needs a non-empty string document id")
    if len(v) > MAX_DOC_ID_BYTES or len(v.encode("utf-8", "surrogatepass")) > MAX_DOC_ID_BYTES:
        raise FrameError(f"document id longer than {MAX_DOC_ID_BYTES} bytes")
    return v


def _version(v: Any) -> tuple[int, int]:
    if type(v) is not list or len(v) != 2:
        raise FrameError("a version is [major, minor]")
    return _uint(v[0], "major version"), _uint(v[1], "minor version")


def _info(v: Any, what: str) -> dict[str, Scalar]:
    if type(v) is not dict:
        raise FrameError(f"{what} must be a map")
    for k, x in v.items():
        if type(k) is not str or not (x is None or type(x) in (str, int, float, bool)):
            raise FrameError(f"{what} maps strings to scalars")
    return v


def _need(fields: list[Any], n: int, name: str) -> None:
    if len(fields) < n:
        raise FrameError(f"{name} needs {n} field(s) after the document id, got {len(fields)}")


def _no_doc(doc: Any, name: str) -> None:
    if doc is not None:
        raise FrameError(f"{name} takes no document id")


def _decode_fields(t: int, doc: Any, f: list[Any]) -> NativeMessage:
    if t == MessageType.UPDATE:
        _need(f, 2, "Update")
        return Update(_doc_id(doc), _bin(f[0], "update"), _uint(f[1], "seq"))
    if t == MessageType.AWARENESS:
        _need(f, 1, "Awareness")
        return Awareness(_doc_id(doc), _bin(f[0], "awareness payload"))
    if t == MessageType.ACK:
        _need(f, 1, "Ack")
        return Ack(_doc_id(doc), _uint(f[0], "seq"))
    if t == MessageType.SYNC_STEP1:
        _need(f, 1, "SyncStep1")
        return SyncStep1(_doc_id(doc), _bin(f[0], "state vector"))
    if t == MessageType.SYNC_STEP2:
        _need(f, 2, "SyncStep2")
        return SyncStep2(_doc_id(doc), _bin(f[0], "update"), _uint(f[1], "seq"))
    if t == MessageType.SUBSCRIBE:
        _need(f, 1, "Subscribe")
        return Subscribe(_doc_id(doc), _bin(f[0], "state vector"))
    if t == MessageType.UNSUBSCRIBE:
        return Unsubscribe(_doc_id(doc))
    if t == MessageType.PING:
        _no_doc(doc, "Ping")
        _need(f, 1, "Ping")
        return Ping(_uint(f[0], "nonce"))
    if t == MessageType.PONG:
        _no_doc(doc, "Pong")
        _need(f, 1, "Pong")
        return Pong(_uint(f[0], "nonce"))
    if t == MessageType.ERROR:
        _need(f, 3, "Error")
        if type(f[2]) is not bool:
            raise FrameError("Error.fatal must be a bool")
        code = _str(f[0], "error code")
        if code in ErrorCode._value2member_map_:
            code = ErrorCode(code)
        seq = _uint(f[3], "seq") if len(f) > 3 else 0
        return Error(code, _str(f[1], "error message"), None if doc is None else _doc_id(doc), f[2], seq)
    if t == MessageType.HELLO:
        _no_doc(doc, "Hello")
        _need(f, 3, "Hello")
        token = None if f[1] is None else _str(f[1], "token")
        return Hello(token, _version(f[0]), _info(f[2], "client info"))
    if t == MessageType.WELCOME:
        _no_doc(doc, "Welcome")
        _need(f, 3, "Welcome")
        return Welcome(_str(f[1], "session id"), _version(f[0]), _info(f[2], "server info"))
    raise FrameError(f"unknown message type {t}")


def decode(frame: bytes, *, max_size: int | None = None) -> NativeMessage:
    """Decode one frame. Raises :class:`MessageTooLargeError` past ``max_size`` bytes and
    :class:`FrameError` for anything malformed; never another exception type."""
    if max_size is not None and len(frame) > max_size:
        raise MessageTooLargeError(f"a {len(frame)}-byte frame exceeds the {max_size}-byte limit",
                                   size=len(frame), limit=max_size)
    try:
        obj = msgpack.unpackb(frame, raw=False, use_list=True, strict_map_key=True)
    except Exception as exc:  # msgpack raises many types (ExtraData, FormatError, ValueError...)
        raise FrameError(f"not a msgpack frame: {type(exc).__name__}: {exc}") from exc
    if type(obj) is not list or len(obj) < 2:
        raise FrameError("a frame is a msgpack array [type, doc_id, ...]")
    t = obj[0]
    if type(t) is not int:
        raise FrameError("the message type must be an integer")
    return _decode_fields(t, obj[1], obj[2:])
