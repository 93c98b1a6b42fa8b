"""A sans-I/O native protocol connection, for either role.

Pump it like this (the async shell owns the socket; this object owns the protocol)::

    conn = Connection(Role.CLIENT)
    conn.send_hello(token="...")
    for frame in conn.bytes_to_send(): await transport.send(frame)
    while True:
        frame = await transport.recv()
        try:
            conn.receive_bytes(frame)
        except ProtocolError:
            ...  # flush bytes_to_send() (a fatal Error is queued), then close the transport
        for event in conn.events_received(): ...
        for frame in conn.bytes_to_send(): await transport.send(frame)

Error policy (one rule, both roles):

- **Our** decode or state failures on received bytes *raise* from :meth:`receive_bytes`:
  :class:`~crdtsync.errors.MessageTooLargeError` (over ``max_message_size``),
  :class:`~crdtsync.errors.FrameError` (malformed), :class:`~crdtsync.errors.VersionError`
  (another major version), :class:`~.state.UnexpectedMessageError` (not allowed now). Before
  raising, the connection queues a fatal :class:`~.native.Error` with the matching code and
  moves to CLOSING, so the caller flushes ``bytes_to_send()`` and closes.
- **The peer's** errors arrive as :class:`~.native.Error` *events* (``event.exception()`` gives
  a :class:`~crdtsync.errors.RemoteError`); a fatal one moves the connection to CLOSING.

Events are the received messages themselves: one frame gives at most one event, so a relay that
wants to forward an Update verbatim still holds its frame. A Ping is answered with a Pong
automatically (and still reported).
"""

from __future__ import annotations

import itertools

from ..errors import FrameError, MessageTooLargeError, ProtocolError, VersionError
from .native import (
    MAX_DOC_ID_BYTES,
    PROTOCOL_VERSION,
    Error,
    ErrorCode,
    Hello,
    NativeMessage,
    Ping,
    Pong,
    Scalar,
    Welcome,
    decode,
    encode,
    peek,
)
from .state import INITIAL, TRANSITIONS, InvalidStateError, Role, State, Trigger, UnexpectedMessageError

__all__ = ["DEFAULT_MAX_MESSAGE_SIZE", "Connection"]

DEFAULT_MAX_MESSAGE_SIZE = 16 * 1024 * 1024


def _readable_doc_id(frame: bytes) -> str | None:
    """The document id of a frame that does not decode, when its header is readable."""
    try:
        doc_id = peek(frame).doc_id
        if doc_id and len(doc_id.encode("utf-8")) <= MAX_DOC_ID_BYTES:
            return doc_id  # a valid id: the Error carrying it decodes
    except (FrameError, UnicodeError):
        pass
    return None


def _trigger(msg: NativeMessage, *, sending: bool) -> Trigger:
    if isinstance(msg, Hello):
        return Trigger.SEND_HELLO if sending else Trigger.RECV_HELLO
    if isinstance(msg, Welcome):
        return Trigger.SEND_WELCOME if sending else Trigger.RECV_WELCOME
    if isinstance(msg, Error) and msg.fatal:
        return Trigger.SEND_FATAL if sending else Trigger.RECV_FATAL
    return Trigger.SEND_MESSAGE if sending else Trigger.RECV_MESSAGE


class Connection:
    """The native protocol for one connection. ``role`` is CLIENT or SERVER.

    ``max_message_size`` bounds received frames. ``version`` is what this side speaks (tests
    change it to exercise negotiation)."""

    def __init__(
        self,
        role: Role,
        *,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        version: tuple[int, int] = PROTOCOL_VERSION,
    ):
        self.role = role
        self.max_message_size = max_message_size
        self.local_version = version
        self.version: tuple[int, int] | None = None  # negotiated, once the handshake is done
        self.session_id: str | None = None  # from the Welcome (client) or accept() (server)
        self.peer_hello: Hello | None = None  # server: the client's Hello
        self.peer_welcome: Welcome | None = None  # client: the server's Welcome
        self._state = INITIAL[role]
        self._events: list[NativeMessage] = []
        self._out: list[bytes] = []
        self._seq = itertools.count(1)

    @property
    def state(self) -> State:
        return self._state

    @property
    def is_open(self) -> bool:
        return self._state is State.OPEN

    def next_seq(self) -> int:
        """A fresh sequence number for an Update or SyncStep2 that wants an Ack (1, 2, ...)."""
        return next(self._seq)

    # -- receiving --------------------------------------------------------------------------
    def receive_bytes(self, frame: bytes) -> None:
        """Feed one received frame. See the module docstring for what raises."""
        if self._state is State.CLOSED:
            raise InvalidStateError("receive_bytes() on a closed connection")
        if self._state is State.CLOSING:
            return  # the peer has not seen our fatal error yet, or is closing: drop it
        if len(frame) > self.max_message_size:
            exc: ProtocolError = MessageTooLargeError(
                f"a {len(frame)}-byte frame exceeds the {self.max_message_size}-byte limit",
                size=len(frame), limit=self.max_message_size,
            )
            self._fail(ErrorCode.TOO_LARGE, str(exc))
            raise exc
        try:
            msg = decode(frame)
        except FrameError as e:
            self._fail(ErrorCode.BAD_FRAME, str(e), _readable_doc_id(frame))
            raise
        trigger = _trigger(msg, sending=False)
        new = TRANSITIONS.get((self.role, self._state, trigger))
        if new is None:
            exc = UnexpectedMessageError(f"unexpected {type(msg).__name__} in state {self._state.value}")
            self._fail(ErrorCode.BAD_FRAME, str(exc), getattr(msg, "doc_id", None))
            raise exc
        if isinstance(msg, (Hello, Welcome)):
            self._check_version(msg.version)
        self._state = new
        if isinstance(msg, Hello):
            self.peer_hello = msg
            self.version = (msg.version[0], min(msg.version[1], self.local_version[1]))
        elif isinstance(msg, Welcome):
            self.peer_welcome = msg
            self.version = msg.version
            self.session_id = msg.session_id
        elif isinstance(msg, Ping):
            self._out.append(encode(Pong(msg.nonce)))
        self._events.append(msg)

    def _check_version(self, version: tuple[int, int]) -> None:
        if version[0] != self.local_version[0]:
            exc = VersionError(f"peer speaks version {version[0]}.{version[1]}, we speak {self.local_version[0]}.x")
            self._fail(ErrorCode.UNSUPPORTED_VERSION, str(exc))
            raise exc

    def events_received(self) -> list[NativeMessage]:
        """The messages received since the last call, in order."""
        events, self._events = self._events, []
        return events

    # -- sending ----------------------------------------------------------------------------
    def send(self, msg: NativeMessage) -> None:
        """Queue ``msg``; raises :class:`InvalidStateError` when the state does not allow it."""
        new = TRANSITIONS.get((self.role, self._state, _trigger(msg, sending=True)))
        if new is None:
            raise InvalidStateError(f"cannot send {type(msg).__name__} in state {self._state.value}")
        self._state = new
        if isinstance(msg, Welcome):
            self.session_id = msg.session_id
            self.version = msg.version
        self._out.append(encode(msg))

    def send_frame(self, frame: bytes) -> None:
        """Queue an already-encoded session-message frame (a relay forwarding an Update as
        received). Only valid in OPEN; the frame is not checked."""
        if self._state is not State.OPEN:
            raise InvalidStateError(f"cannot forward a frame in state {self._state.value}")
        self._out.append(frame)

    def bytes_to_send(self) -> list[bytes]:
        """Frames queued since the last call, one per message, in order."""
        out, self._out = self._out, []
        return out

    # -- helpers ----------------------------------------------------------------------------
    def send_hello(self, token: str | None = None, client: dict[str, Scalar] | None = None) -> None:
        """Client: start the handshake."""
        self.send(Hello(token, self.local_version, client or {}))

    def accept(self, session_id: str, info: dict[str, Scalar] | None = None) -> None:
        """Server, in AUTHENTICATING: welcome the client (negotiated version, our limits)."""
        info = {"max_message_size": self.max_message_size, **(info or {})}
        self.send(Welcome(session_id, self.version or self.local_version, info))

    def reject(self, code: str, message: str = "") -> None:
        """Send a fatal Error (a refused Hello, a policy violation) and move to CLOSING."""
        self.send(Error(code, message, None, True))

    def _fail(self, code: str, message: str, doc_id: str | None = None) -> None:
        if self._state not in (State.CLOSING, State.CLOSED):
            self.send(Error(code, message, doc_id, True))

    def close(self) -> None:
        """The transport is gone (or we closed it): CLOSED, nothing more to send."""
        self._state = TRANSITIONS[(self.role, self._state, Trigger.CLOSE)]
        self._out.clear()
