"""The local channel's sans-I/O session and framing: convergence properties, bad input."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crdtsync.errors import FrameError, MessageTooLargeError
from crdtsync.offline.session import Side, SyncSession
from crdtsync.offline.wire import FrameReader, encode_frame
from crdtsync.origins import remote_origin
from crdtsync.protocol import native
from crdtsync.replica import Replica
from crdtsync.testing.strategies import edit_ops

DOCS = ("d1", "d2", "d3")
ops_lists = st.lists(edit_ops(doc_ids=DOCS), max_size=8)


def snapshot(r: Replica) -> dict[str, Any]:
    return {d: r.read_path(d, ()) for d in sorted(r.doc_ids()) if r.read_path(d, ())}


class Pair:
    """A member and a hub session over an in-memory byte pipe; local edits are forwarded."""

    def __init__(self, member: Replica, hub: Replica):
        self.m = SyncSession(member, side=Side.MEMBER, origin=remote_origin("local:hub"))
        self.h = SyncSession(hub, side=Side.HUB, origin=remote_origin("local:1"))
        for r, s in ((member, self.m), (hub, self.h)):
            r.on_update(lambda d, u, o, s=s: s.local_update(d, u) if s.wants(o) else None)

    def start(self) -> None:
        self.m.start()
        self.h.start()

    def pump(self, chunk: int | None = None) -> int:
        rounds = 0
        while True:
            dm, dh = self.m.data_to_send(), self.h.data_to_send()
            if not dm and not dh:
                return rounds
            rounds += 1
            for data, to in ((dm, self.h), (dh, self.m)):
                step = chunk or max(1, len(data))
                for i in range(0, len(data), step):
                    to.receive_bytes(data[i : i + step])


@settings(max_examples=60, deadline=None)
@given(before_a=ops_lists, before_b=ops_lists, after_a=ops_lists, after_b=ops_lists,
       chunk=st.one_of(st.none(), st.integers(1, 7)))
def test_sessions_converge_to_the_crdt_merge(before_a: Any, before_b: Any, after_a: Any, after_b: Any,
                                             chunk: int | None) -> None:
    a, b = Replica(), Replica()
    for op in before_a:
        op.apply(a)
    for op in before_b:
        op.apply(b)
    # the reference: both histories merged into a fresh replica
    ref = Replica()
    for r in (a, b):
        for d in r.doc_ids():
            ref.apply_update(d, r.get_update(d))
    pair = Pair(a, b)
    pair.start()
    pair.pump(chunk)
    assert pair.m.synced and pair.m.failed is None and pair.h.failed is None
    assert snapshot(a) == snapshot(b) == snapshot(ref)
    for op_a, op_b in zip(after_a, after_b, strict=False):
        op_a.apply(a)
        op_b.apply(b)
    pair.pump(chunk)
    assert snapshot(a) == snapshot(b)


def test_no_echo_of_a_peers_own_update() -> None:
    a, b = Replica(), Replica()
    pair = Pair(a, b)
    pair.start()
    pair.pump()
    a.write(("d1", "k"), 1)
    sent = pair.m.data_to_send()
    assert sent
    pair.h.receive_bytes(sent)
    assert b.read(("d1", "k")) == 1
    assert pair.h.data_to_send() == b""  # the hub does not send it back
    assert pair.h.updates_in == 1


def test_member_synced_only_after_the_hubs_state_arrived() -> None:
    a, b = Replica(), Replica()
    for i in range(20):
        b.write(("d2", str(i)), i)
    synced: list[bool] = []
    m = SyncSession(a, side=Side.MEMBER, origin=remote_origin("h"), on_synced=lambda: synced.append(True))
    h = SyncSession(b, side=Side.HUB, origin=remote_origin("m"))
    m.start()
    h.start()
    h.receive_bytes(m.data_to_send())
    m.receive_bytes(h.data_to_send())  # hub's step1s and Ping(0): member answers, asks Ping(1)
    assert not m.synced
    h.receive_bytes(m.data_to_send())
    m.receive_bytes(h.data_to_send())
    assert m.synced and synced == [True]
    assert a.read(("d2", "19")) == 19


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64))
def test_garbage_never_raises(data: bytes) -> None:
    s = SyncSession(Replica(), side=Side.HUB, origin=remote_origin("x"))
    s.receive_bytes(data)
    if s.failed is not None:
        reply = s.data_to_send()
        r = FrameReader()
        r.feed(reply)
        msgs = r.messages()
        assert isinstance(msgs[-1], native.Error) and msgs[-1].fatal


@pytest.mark.parametrize("msg", [native.Update("d", b"\xff\xff\xff"), native.SyncStep1("d", b"\xff\xff\xff\xff")])
def test_bad_update_or_state_vector_fails_the_session_not_the_process(msg: native.NativeMessage) -> None:
    r = Replica()
    s = SyncSession(r, side=Side.HUB, origin=remote_origin("x"))
    s.receive_bytes(encode_frame(msg))
    assert s.failed is not None and "bad_update" in s.failed
    s.receive_bytes(encode_frame(native.Update("d", Replica().get_update("zz"))))  # ignored once failed
    assert s.updates_in == 0


def test_frame_limit_is_enforced() -> None:
    big = encode_frame(native.Update("d", b"x" * 1000))
    reader = FrameReader(max_frame=100)
    reader.feed(big[:4])
    with pytest.raises(MessageTooLargeError):
        reader.messages()
    s = SyncSession(Replica(), side=Side.HUB, origin=remote_origin("x"), max_frame=100)
    s.receive_bytes(big)
    assert s.failed is not None and "too_large" in s.failed
    with pytest.raises(ValueError):
        FrameReader(max_frame=1)


@given(st.lists(st.binary(min_size=1, max_size=40), min_size=1, max_size=5), st.integers(1, 9))
def test_framing_survives_any_split(payloads: list[bytes], step: int) -> None:
    msgs = [native.Update(f"doc{i}", p, i) for i, p in enumerate(payloads)]
    stream = b"".join(encode_frame(m) for m in msgs)
    reader = FrameReader()
    out: list[native.NativeMessage] = []
    for i in range(0, len(stream), step):
        reader.feed(stream[i : i + step])
        out.extend(reader.messages())
    assert out == msgs and reader.buffered == 0


def test_truncated_msgpack_frame_is_a_frame_error() -> None:
    reader = FrameReader()
    reader.feed(b"\x00\x00\x00\x02\x93\x06")
    with pytest.raises(FrameError):
        reader.messages()
