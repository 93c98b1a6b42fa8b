"""Fuzz: random bytes and mutated valid frames only ever raise crdtsync errors, for both
protocols, for the codecs and for the connection objects of both roles."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crdtsync.errors import CrdtsyncError, FrameError, ProtocolError
from crdtsync.protocol import native, yjs
from crdtsync.protocol.awareness import AwarenessRegistry, InvalidAwarenessError, decode_awareness
from crdtsync.protocol.connection import Connection
from crdtsync.protocol.native import Error
from crdtsync.protocol.state import Role, State
from crdtsync.testing.protocol_strategies import mutated_frames, native_frames, yjs_frames

FUZZ = settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)

any_native = st.binary(max_size=200) | mutated_frames(native_frames(max_payload=40))
any_yjs = st.binary(max_size=200) | mutated_frames(yjs_frames(max_payload=40))


@FUZZ
@given(any_native)
def test_native_decode_and_peek_raise_only_frame_errors(frame: bytes) -> None:
    for fn in (native.decode, native.peek):
        with contextlib.suppress(FrameError):
            fn(frame)


@FUZZ
@given(any_yjs)
def test_yjs_decode_raises_only_frame_errors(frame: bytes) -> None:
    try:
        msg = yjs.decode_yjs(frame)
    except FrameError:
        return
    assert yjs.decode_yjs(yjs.encode_yjs(msg)) == msg
    if isinstance(msg, yjs.Awareness):
        with contextlib.suppress(InvalidAwarenessError):
            decode_awareness(msg.payload)


@FUZZ
@given(st.binary(max_size=200))
def test_awareness_registry_survives_garbage(payload: bytes) -> None:
    reg = AwarenessRegistry(clock=lambda: 0.0)
    try:
        reg.apply(payload, owner="x")
    except InvalidAwarenessError:
        assert len(reg) == 0


@FUZZ
@pytest.mark.parametrize("role", list(Role))
@given(frames=st.lists(any_native, min_size=1, max_size=6))
def test_connection_fed_garbage_raises_only_protocol_errors_and_closes(role: Role, frames: list[bytes]) -> None:
    conn = Connection(role, max_message_size=150)
    if role is Role.CLIENT:
        conn.send_hello()
        conn.bytes_to_send()
    for frame in frames:
        try:
            conn.receive_bytes(frame)
        except ProtocolError:
            assert conn.state is State.CLOSING
            out = conn.bytes_to_send()
            assert len(out) == 1
            err = native.decode(out[0])
            assert isinstance(err, Error) and err.fatal
            break
        except CrdtsyncError as exc:  # pragma: no cover - would be a bug
            raise AssertionError(f"unexpected {exc!r}") from exc
        conn.events_received()
        conn.bytes_to_send()
