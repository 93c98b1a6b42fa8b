"""The native msgpack envelope: known bytes, round trips, peek, strict field checks."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given

from crdtsync.errors import FrameError, MessageTooLargeError, PermissionDeniedError, RemoteError
from crdtsync.protocol import native
from crdtsync.protocol.native import (
    Ack,
    Error,
    ErrorCode,
    Hello,
    MessageType,
    Ping,
    Update,
    decode,
    encode,
    peek,
)
from crdtsync.testing.protocol_strategies import native_frames, native_messages


def test_worked_example_from_docs() -> None:
    """The hex example in docs/protocol.md."""
    frame = encode(Update("todos", b"\x01\x02", 7))
    assert frame.hex() == "94" + "06" + "a5746f646f73" + "c4020102" + "07"
    assert decode(frame) == Update("todos", b"\x01\x02", 7)
    hello = encode(Hello("tok", (1, 0), {"name": "py"}))
    assert hello.hex() == "9500c0920100a3746f6b81a46e616d65a27079"


@given(native_messages())
def test_round_trip_every_message(msg: native.NativeMessage) -> None:
    frame = encode(msg)
    assert decode(frame) == msg
    h = peek(frame)
    assert h.type is MessageType(msgpack.unpackb(frame)[0])
    assert h.doc_id == getattr(msg, "doc_id", None)


@given(native_frames(max_payload=70_000))
def test_peek_agrees_with_decode_for_large_payloads(frame: bytes) -> None:
    msg = decode(frame)
    assert peek(frame).doc_id == getattr(msg, "doc_id", None)


def test_peek_reads_non_minimal_encodings_other_implementations_may_write() -> None:
    # array16 header, uint8 type, str8 doc id
    frame = b"\xdc\x00\x04" + b"\xcc\x06" + b"\xd9\x01d" + b"\xc4\x00" + b"\x00"
    assert peek(frame) == native.Header(MessageType.UPDATE, "d")
    assert decode(frame) == Update("d", b"", 0)
    long_id = "x" * 300
    assert peek(encode(Ack(long_id, 1))).doc_id == long_id  # str16


def test_extra_trailing_fields_are_ignored_for_forward_compatibility() -> None:
    frame = msgpack.packb([6, "d", b"u", 3, "a future field"], use_bin_type=True)
    assert decode(frame) == Update("d", b"u", 3)


@pytest.mark.parametrize(
    "obj",
    [
        {"type": 6},  # not an array
        [6],  # no doc id
        [99, None],  # unknown type
        ["6", "d", b"u", 1],  # type not an int
        [6, "d", "not bin", 1],  # update must be bin
        [6, "d", b"u", -1],  # negative seq
        [6, "d", b"u"],  # missing seq
        [6, "", b"u", 1],  # empty doc id
        [6, None, b"u", 1],  # doc message without doc id
        [6, b"d", b"u", 1],  # doc id as bin
        [6, "x" * 1025, b"u", 1],  # doc id too long
        [10, "d", 1],  # ping with a doc id
        [9, None, "code", "msg", 1],  # fatal must be a bool
        [0, None, [1], None, {}],  # version is [major, minor]
        [0, None, [1, 0], 5, {}],  # token must be str or nil
        [0, None, [1, 0], None, {"k": [1]}],  # info values are scalars
        [1, None, [1, 0], None, {}],  # session id must be a str
    ],
)
def test_malformed_envelopes_raise_frame_error(obj: object) -> None:
    with pytest.raises(FrameError):
        decode(msgpack.packb(obj, use_bin_type=True))


@pytest.mark.parametrize("frame", [b"", b"\xc1", b"\x94\x06", b"\x92\x06\xa5ab", b"\x93\x06\xa1d\xc4\x05ab"])
def test_garbage_raises_frame_error(frame: bytes) -> None:
    with pytest.raises(FrameError):
        decode(frame)


@pytest.mark.parametrize(
    "frame", [b"", b"\x06", b"\x91\x06", b"\x92\xff\xc0", b"\x92\x63\xc0", b"\x92\x06\x01", b"\x92\x06\xa5ab"]
)
def test_peek_rejects_bad_headers(frame: bytes) -> None:
    with pytest.raises(FrameError):
        peek(frame)


def test_max_size() -> None:
    frame = encode(Update("d", b"x" * 100))
    with pytest.raises(MessageTooLargeError):
        decode(frame, max_size=50)
    assert decode(frame, max_size=len(frame)) == Update("d", b"x" * 100)


def test_error_codes_and_exceptions() -> None:
    e = decode(encode(Error(ErrorCode.FORBIDDEN, "read-only", "d")))
    assert isinstance(e, Error) and e.code is ErrorCode.FORBIDDEN
    exc = e.exception()
    assert isinstance(exc, PermissionDeniedError) and exc.code == "forbidden"
    unknown = decode(encode(Error("from_the_future", "x", None, True)))
    assert isinstance(unknown, Error) and unknown.code == "from_the_future" and unknown.fatal
    assert type(unknown.exception()) is RemoteError


def test_encode_refuses_non_messages() -> None:
    with pytest.raises(TypeError):
        encode(Ping)  # type: ignore[arg-type]
