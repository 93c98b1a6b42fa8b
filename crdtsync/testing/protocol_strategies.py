"""Hypothesis strategies for protocol messages and frames (public: relay fuzz tests use them).

Every strategy takes keyword-only arguments and rejects bad ones early::

    from crdtsync.testing.protocol_strategies import native_messages, mutated_frames
    @given(native_messages())
    def test_round_trip(msg): assert decode(encode(msg)) == msg
"""

from __future__ import annotations

from hypothesis import strategies as st

from ..protocol import native, yjs
from ..protocol.native import ErrorCode

__all__ = ["doc_ids", "mutated_frames", "native_frames", "native_messages", "yjs_frames", "yjs_messages"]


def _check_size(max_size: int) -> None:
    if max_size < 0:
        raise ValueError(f"max_size must be >= 0, got {max_size}")


def doc_ids(*, max_size: int = 40) -> st.SearchStrategy[str]:
    """Non-empty document ids, including non-ASCII ones."""
    if max_size < 1:
        raise ValueError(f"max_size must be >= 1, got {max_size}")
    return st.text(min_size=1, max_size=max_size)


def native_messages(*, max_payload: int = 256) -> st.SearchStrategy[native.NativeMessage]:
    """Every native message type with arbitrary (valid) fields."""
    _check_size(max_payload)
    blob = st.binary(max_size=max_payload)
    uint = st.integers(min_value=0, max_value=native.MAX_UINT)
    version = st.tuples(st.integers(0, 2**16), st.integers(0, 2**16))
    scalar = st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text(max_size=20)
    info = st.dictionaries(st.text(max_size=10), scalar, max_size=4)
    code = st.sampled_from(list(ErrorCode)) | st.text(max_size=20)
    d = doc_ids()
    return st.one_of(
        st.builds(native.Hello, st.none() | st.text(max_size=60), version, info),
        st.builds(native.Welcome, st.text(max_size=20), version, info),
        st.builds(native.Subscribe, d, blob),
        st.builds(native.Unsubscribe, d),
        st.builds(native.SyncStep1, d, blob),
        st.builds(native.SyncStep2, d, blob, uint),
        st.builds(native.Update, d, blob, uint),
        st.builds(native.Ack, d, uint),
        st.builds(native.Awareness, d, blob),
        st.builds(native.Error, code, st.text(max_size=40), st.none() | d, st.booleans()),
        st.builds(native.Ping, uint),
        st.builds(native.Pong, uint),
    )


def native_frames(*, max_payload: int = 256) -> st.SearchStrategy[bytes]:
    return native_messages(max_payload=max_payload).map(native.encode)


def yjs_messages(*, max_payload: int = 256) -> st.SearchStrategy[yjs.YjsMessage]:
    _check_size(max_payload)
    blob = st.binary(max_size=max_payload)
    return st.one_of(
        blob.map(yjs.SyncStep1),
        blob.map(yjs.SyncStep2),
        blob.map(yjs.Update),
        blob.map(yjs.Awareness),
        st.text(max_size=40).map(yjs.AuthDenied),
        st.just(yjs.QueryAwareness()),
    )


def yjs_frames(*, max_payload: int = 256) -> st.SearchStrategy[bytes]:
    return yjs_messages(max_payload=max_payload).map(yjs.encode_yjs)


@st.composite
def _mutated(draw: st.DrawFn, valid: st.SearchStrategy[bytes]) -> bytes:
    buf = bytearray(draw(valid))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]))
        if op == "insert" or not buf:
            buf.insert(draw(st.integers(0, len(buf))), draw(st.integers(0, 255)))
            continue
        i = draw(st.integers(0, len(buf) - 1))
        if op == "flip":
            buf[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "set":
            buf[i] = draw(st.sampled_from([0x00, 0x7F, 0x80, 0xC0, 0xC1, 0xD9, 0xDD, 0xFF]))
        elif op == "delete":
            del buf[i]
        else:
            del buf[i:]
    return bytes(buf)


def mutated_frames(valid: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    """Frames drawn from ``valid`` with a few bytes flipped, replaced, inserted, deleted or cut."""
    if not isinstance(valid, st.SearchStrategy):
        raise TypeError("mutated_frames() takes a strategy of valid frames")
    return _mutated(valid)
