"""The sans-I/O native connection: bytes in, events out, for both roles."""

from __future__ import annotations

import pytest

from crdtsync.errors import FrameError, MessageTooLargeError, VersionError
from crdtsync.protocol import native
from crdtsync.protocol.connection import Connection
from crdtsync.protocol.native import (
    Ack,
    Error,
    ErrorCode,
    Hello,
    Ping,
    Pong,
    Subscribe,
    Update,
    Welcome,
    decode,
    encode,
)
from crdtsync.protocol.state import TRANSITIONS, InvalidStateError, Role, State, Trigger, UnexpectedMessageError


def pump(src: Connection, dst: Connection) -> list[native.NativeMessage]:
    for frame in src.bytes_to_send():
        dst.receive_bytes(frame)
    return dst.events_received()


def open_pair() -> tuple[Connection, Connection]:
    c, s = Connection(Role.CLIENT), Connection(Role.SERVER)
    c.send_hello("tok", {"name": "test"})
    (hello,) = pump(c, s)
    assert hello == Hello("tok", (1, 0), {"name": "test"})
    assert (s.state, c.state) == (State.AUTHENTICATING, State.AWAITING_WELCOME)
    s.accept("session-1")
    (welcome,) = pump(s, c)
    assert isinstance(welcome, Welcome) and welcome.info["max_message_size"] == s.max_message_size
    assert (c.state, s.state) == (State.OPEN, State.OPEN)
    assert c.session_id == s.session_id == "session-1"
    return c, s


def test_handshake_then_messages_both_ways() -> None:
    c, s = open_pair()
    c.send(Subscribe("d", b"\x00"))
    c.send(Update("d", b"u", c.next_seq()))
    assert pump(c, s) == [Subscribe("d", b"\x00"), Update("d", b"u", 1)]
    s.send(Ack("d", 1))
    assert pump(s, c) == [Ack("d", 1)]
    assert c.next_seq() == 2


@pytest.mark.parametrize("pinger", ["client", "server"])
def test_ping_is_answered_automatically_either_way(pinger: str) -> None:
    c, s = open_pair()
    a, b = (c, s) if pinger == "client" else (s, c)
    a.send(Ping(42))
    assert pump(a, b) == [Ping(42)]
    assert pump(b, a) == [Pong(42)]


@pytest.mark.parametrize("sender", ["client", "server"])
def test_fatal_error_either_way_moves_both_to_closing(sender: str) -> None:
    c, s = open_pair()
    a, b = (c, s) if sender == "client" else (s, c)
    a.send(Error(ErrorCode.INTERNAL, "bye", fatal=True))
    assert a.state is State.CLOSING
    (err,) = pump(a, b)
    assert isinstance(err, Error) and err.fatal and b.state is State.CLOSING
    # frames still arriving while closing are dropped
    b.receive_bytes(encode(Ping(1)))
    assert b.events_received() == []
    with pytest.raises(InvalidStateError):
        b.send(Ping(1))
    b.close()
    assert b.state.value == "closed"
    with pytest.raises(InvalidStateError):
        b.receive_bytes(encode(Ping(1)))


def test_non_fatal_error_keeps_the_connection_open() -> None:
    c, s = open_pair()
    s.send(Error(ErrorCode.FORBIDDEN, "read-only", "d"))
    (err,) = pump(s, c)
    assert isinstance(err, Error) and c.state is State.OPEN


def test_server_rejects_a_bad_token_with_a_fatal_error() -> None:
    c, s = Connection(Role.CLIENT), Connection(Role.SERVER)
    c.send_hello("bad")
    pump(c, s)
    s.reject(ErrorCode.UNAUTHORIZED, "bad token")
    (err,) = pump(s, c)
    assert isinstance(err, Error) and err.code is ErrorCode.UNAUTHORIZED
    assert c.state is State.CLOSING and s.state is State.CLOSING


def _queued_error(conn: Connection) -> Error:
    (frame,) = conn.bytes_to_send()
    err = decode(frame)
    assert isinstance(err, Error) and err.fatal
    assert conn.state is State.CLOSING
    return err


@pytest.mark.parametrize("role", list(Role))
def test_garbage_raises_and_queues_bad_frame(role: Role) -> None:
    conn = Connection(role)
    with pytest.raises(FrameError):
        conn.receive_bytes(b"\xc1garbage")
    assert _queued_error(conn).code is ErrorCode.BAD_FRAME
    conn.receive_bytes(b"\xc1more garbage")  # dropped while closing
    assert conn.events_received() == []


@pytest.mark.parametrize("role", list(Role))
def test_too_large_raises_and_queues_too_large(role: Role) -> None:
    conn = Connection(role, max_message_size=10)
    with pytest.raises(MessageTooLargeError):
        conn.receive_bytes(encode(Update("d", b"x" * 20)))
    assert _queued_error(conn).code is ErrorCode.TOO_LARGE


def test_unknown_major_version_is_refused_by_the_server() -> None:
    c, s = Connection(Role.CLIENT, version=(2, 0)), Connection(Role.SERVER)
    c.send_hello()
    with pytest.raises(VersionError):
        pump(c, s)
    assert _queued_error(s).code is ErrorCode.UNSUPPORTED_VERSION


def test_unknown_major_version_is_refused_by_the_client() -> None:
    c = Connection(Role.CLIENT)
    c.send_hello()
    c.bytes_to_send()
    with pytest.raises(VersionError):
        c.receive_bytes(encode(Welcome("s", (3, 1))))
    assert _queued_error(c).code is ErrorCode.UNSUPPORTED_VERSION


def test_minor_version_is_negotiated_down() -> None:
    c, s = Connection(Role.CLIENT, version=(1, 7)), Connection(Role.SERVER, version=(1, 2))
    c.send_hello()
    pump(c, s)
    s.accept("x")
    (welcome,) = pump(s, c)
    assert isinstance(welcome, Welcome) and welcome.version == (1, 2)
    assert c.version == s.version == (1, 2)


@pytest.mark.parametrize(
    ("role", "msg"),
    [
        (Role.SERVER, Subscribe("d", b"")),  # before Hello
        (Role.SERVER, Welcome("x")),  # the server's own message
        (Role.CLIENT, Update("d", b"")),  # before Welcome (client has not even sent Hello)
        (Role.CLIENT, Hello()),
    ],
)
def test_messages_out_of_order_are_protocol_violations(role: Role, msg: native.NativeMessage) -> None:
    conn = Connection(role)
    with pytest.raises(UnexpectedMessageError):
        conn.receive_bytes(encode(msg))
    assert _queued_error(conn).code is ErrorCode.BAD_FRAME


def test_a_second_hello_is_a_violation() -> None:
    _, s = open_pair()
    with pytest.raises(UnexpectedMessageError):
        s.receive_bytes(encode(Hello()))


def test_sending_out_of_state_is_a_local_error() -> None:
    c = Connection(Role.CLIENT)
    with pytest.raises(InvalidStateError):
        c.send(Subscribe("d", b""))
    with pytest.raises(InvalidStateError):
        c.send_frame(encode(Update("d", b"")))
    s = Connection(Role.SERVER)
    with pytest.raises(InvalidStateError):
        s.accept("too early")


def test_forwarding_a_frame_verbatim() -> None:
    _, s = open_pair()
    frame = encode(Update("d", b"payload", 9))
    s.send_frame(frame)
    assert s.bytes_to_send() == [frame]


def test_transition_table_covers_close_from_every_state() -> None:
    for role in Role:
        for state in State:
            assert TRANSITIONS[(role, state, Trigger.CLOSE)] is State.CLOSED
