"""The y-websocket message set: known bytes, round trips, peek without copying."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crdtsync.errors import FrameError
from crdtsync.protocol import yjs
from crdtsync.protocol.yjs import (
    AuthDenied,
    Awareness,
    QueryAwareness,
    SyncStep1,
    SyncStep2,
    Update,
    YjsKind,
    decode_yjs,
    encode_yjs,
    peek_yjs,
)


def yjs_messages() -> st.SearchStrategy[yjs.YjsMessage]:
    b = st.binary(max_size=300)
    return st.one_of(
        b.map(SyncStep1),
        b.map(SyncStep2),
        b.map(Update),
        b.map(Awareness),
        st.text(max_size=40).map(AuthDenied),
        st.just(QueryAwareness()),
    )


@pytest.mark.parametrize(
    ("msg", "wire"),
    [
        (SyncStep1(b"\x00"), "000001" + "00"),
        (SyncStep2(b"\x00\x00"), "00010200" + "00"),
        (Update(b"\xaa\xbb\xcc"), "000203aabbcc"),
        (Awareness(b"\x00"), "010100"),
        (AuthDenied("read-only é"), "02000c" + "read-only é".encode().hex()),
        (QueryAwareness(), "03"),
    ],
)
def test_known_encodings(msg: yjs.YjsMessage, wire: str) -> None:
    assert encode_yjs(msg).hex() == wire
    assert decode_yjs(bytes.fromhex(wire)) == msg


@given(yjs_messages())
def test_round_trip(msg: yjs.YjsMessage) -> None:
    assert decode_yjs(encode_yjs(msg)) == msg


@given(st.binary(max_size=2000))
def test_peek_locates_the_update_payload(update: bytes) -> None:
    frame = encode_yjs(Update(update))
    p = peek_yjs(frame)
    assert p.kind is YjsKind.UPDATE
    assert frame[p.start : p.end] == update
    assert yjs.update_frame(update) == frame
    assert yjs.update_frame(update, step2=True) == encode_yjs(SyncStep2(update))


@pytest.mark.parametrize(
    "wire",
    [
        "",  # empty frame
        "04",  # unknown message type
        "0003",  # unknown sync type
        "0001",  # sync step 2 without payload
        "000205aabb",  # truncated update
        "000201aabb",  # trailing byte
        "0301",  # query awareness with trailing byte
        "0201",  # unknown auth type
        "020001ff",  # reason not UTF-8
        "ff",  # truncated varUint type
    ],
)
def test_malformed_frames_raise_frame_error(wire: str) -> None:
    with pytest.raises(FrameError):
        decode_yjs(bytes.fromhex(wire))


@given(st.binary(max_size=100))
def test_random_bytes_only_raise_frame_error(data: bytes) -> None:
    with contextlib.suppress(FrameError):
        decode_yjs(data)


def test_encode_refuses_non_messages() -> None:
    with pytest.raises(TypeError):
        encode_yjs("nope")  # type: ignore[arg-type]
