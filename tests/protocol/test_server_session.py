"""The native protocol's server rules, as a contract: one test per rule of
crdtsync.protocol.server_session (and docs/protocol.md §4), driven by bytes through the sans-I/O
ServerSession, with a room whose store commits only when the test says so. No sockets."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

import pytest
from pycrdt import Doc, Map

from crdtsync.errors import AuthError, FrameError, StorageError
from crdtsync.protocol import native as n
from crdtsync.protocol.awareness import AwarenessEntry, AwarenessRegistry, encode_awareness, state_json
from crdtsync.protocol.connection import Connection
from crdtsync.protocol.server_session import (
    Authenticated,
    CloseConnection,
    JoinRoom,
    LeaveRoom,
    ServerLimits,
    ServerSession,
)
from crdtsync.protocol.state import Role
from crdtsync.protocol.token import Access, Claims, Grant

LIMITS = ServerLimits(max_message_size=1 << 20, max_subscriptions=3, max_held=2, max_held_bytes=10_000,
                      welcome_info={"rate": 2000.0, "burst": 4000, "max_queue": 4096, "max_subscriptions": 3})
TOKENS = {"rw": Claims("ana", (Grant("*", Access.WRITE),)), "ro": Claims("bob", (Grant("*", Access.READ),)),
          "notes": Claims("cy", (Grant("notes/*", Access.WRITE),))}


class FakeRoom:
    """A room whose store commits when the test calls :meth:`commit`."""

    def __init__(self, *, down: bool = False) -> None:
        self.doc: Doc[Any] = Doc()
        self.down = down
        self.durable: list[Callable[[], None]] = []
        self.awareness = AwarenessRegistry(clock=lambda: 0.0)

    def sync_step2(self, state_vector: bytes) -> bytes:
        try:
            return bytes(self.doc.get_update(state_vector))
        except Exception as exc:
            raise FrameError(str(exc)) from exc

    def state_vector(self) -> bytes:
        return bytes(self.doc.get_state())

    def apply_update(self, update: bytes, sender: Any, *, frames: Any = None,
                     on_durable: Callable[[], None] | None = None) -> None:
        if self.down:
            raise StorageError("room down")
        try:
            self.doc.apply_update(update)
        except Exception as exc:
            raise FrameError(str(exc)) from exc
        if on_durable is not None:
            self.durable.append(on_durable)

    def commit(self) -> None:
        waiting, self.durable = self.durable, []
        for cb in waiting:
            cb()

    def apply_awareness(self, payload: bytes, sender: Any, *, principal: Hashable | None = None) -> object:
        return self.awareness.apply(payload, sender.key, principal=principal)

    def awareness_snapshot(self) -> bytes | None:
        return self.awareness.encode_all()


class Client:
    """The session under test, the client's Connection and what the session emitted."""

    def __init__(self, token: str = "rw", info: dict[str, n.Scalar] | None = None, key: str = "c1") -> None:
        def authenticate(tok: str | None) -> Claims:
            if tok not in TOKENS:
                raise AuthError("unknown token")
            return TOKENS[tok]

        self.out: list[bytes] = []
        self.session = ServerSession(limits=LIMITS, authenticate=authenticate, now=lambda: 0.0,
                                     emit=self.out.append, member_key=key, session_id="s1")
        self.conn = Connection(Role.CLIENT)
        self.conn.send_hello(token, info or {})
        self.push()

    def push(self) -> None:
        for frame in self.conn.bytes_to_send():
            self.session.receive_bytes(frame)

    def send(self, msg: n.NativeMessage) -> None:
        self.session.receive_bytes(n.encode(msg))

    def received(self) -> list[n.NativeMessage]:
        msgs = [n.decode(f) for f in self.out]
        self.out.clear()
        return msgs

    def join(self, doc_id: str, room: FakeRoom, sv: bytes = b"\x00") -> list[n.NativeMessage]:
        self.send(n.Subscribe(doc_id, sv))
        assert JoinRoom(doc_id) in self.session.events()
        self.session.joined(doc_id, room)
        return self.received()


def _update(key: str, doc: Doc[Any] | None = None) -> bytes:
    d: Doc[Any] = doc if doc is not None else Doc()
    before = d.get_state()
    d.get("m", type=Map)[key] = 1
    return bytes(d.get_update(before))


# -- 1. handshake ---------------------------------------------------------------------------------


def test_hello_is_welcomed_with_the_documented_limits() -> None:
    c = Client()
    [welcome] = c.received()
    assert isinstance(welcome, n.Welcome) and welcome.session_id == "s1"
    assert set(welcome.info) == {"max_message_size", "max_subscriptions", "rate", "burst", "max_queue"}
    assert isinstance(c.session.events()[0], Authenticated)


def test_a_bad_token_is_a_fatal_unauthorized_and_a_close() -> None:
    c = Client(token="nope")
    [err] = c.received()
    assert isinstance(err, n.Error) and (err.code, err.fatal) == ("unauthorized", True)
    assert c.session.events() == [CloseConnection(1008, "unknown token")]


def test_a_frame_that_does_not_decode_is_fatal_and_names_the_document_when_readable() -> None:
    c = Client()
    c.received()
    c.session.receive_bytes(n.encode(n.Update("doc-7", b"u", 1))[:-1] + b"\xc1")  # header fine, payload not
    [err] = c.received()
    assert (err.code, err.doc_id, err.fatal) == ("bad_frame", "doc-7", True)  # type: ignore[union-attr]
    assert isinstance(c.session.events()[-1], CloseConnection)


def test_a_text_frame_is_a_bad_frame() -> None:
    c = Client()
    c.received()
    c.session.receive_bytes(b'{"type": "subscribe"}')  # what a text frame's bytes look like
    [err] = c.received()
    assert (err.code, err.fatal) == ("bad_frame", True)  # type: ignore[union-attr]


# -- 2. subscribe -----------------------------------------------------------------------------------


def test_subscribe_answers_step2_then_step1_then_presence() -> None:
    c = Client()
    c.received()
    room = FakeRoom()
    room.doc.apply_update(_update("a"))
    room.awareness.apply(encode_awareness([AwarenessEntry(9, 1, state_json({"n": "x"}))]), "other")
    msgs = c.join("d", room)
    assert [type(m) for m in msgs] == [n.SyncStep2, n.SyncStep1, n.Awareness]
    assert msgs[0].update == room.sync_step2(b"\x00")  # type: ignore[union-attr]


def test_subscribe_without_a_grant_is_forbidden() -> None:
    c = Client(token="notes")
    c.received()
    c.send(n.Subscribe("private", b"\x00"))
    [err] = c.received()
    assert (err.code, err.doc_id, err.fatal) == ("forbidden", "private", False)  # type: ignore[union-attr]
    assert c.session.events() == [Authenticated(TOKENS["notes"])]


def test_more_subscriptions_than_allowed_counting_pending_joins() -> None:
    c = Client()
    c.received()
    for i in range(4):
        c.send(n.Subscribe(f"d{i}", b"\x00"))
    [err] = c.received()
    assert (err.code, err.doc_id) == ("limit_exceeded", "d3")  # type: ignore[union-attr]


def test_frames_for_a_joining_document_wait_in_order_and_other_documents_do_not() -> None:
    c = Client()
    c.received()
    c.send(n.Subscribe("slow", b"\x00"))
    c.send(n.Update("slow", _update("a"), 1))
    c.send(n.Ping(5))
    assert [type(m) for m in c.received()] == [n.Pong]  # no ordering across documents
    room = FakeRoom()
    c.session.joined("slow", room)
    assert set(room.doc.get("m", type=Map).keys()) == {"a"}
    room.commit()
    assert [type(m) for m in c.received()][-1] is n.Ack


def test_past_the_held_limit_the_shell_is_told_to_stop_reading() -> None:
    c = Client()
    c.received()
    c.send(n.Subscribe("slow", b"\x00"))
    for seq in (1, 2):
        c.send(n.Update("slow", _update(f"k{seq}"), seq))
    assert not c.session.paused
    c.send(n.Update("slow", _update("k3"), 3))
    assert c.session.paused  # nothing dropped: the third is held, reading stops
    room = FakeRoom()
    c.session.joined("slow", room)
    assert not c.session.paused and len(room.doc.get("m", type=Map)) == 3


def test_a_failed_join_is_room_unavailable_and_its_held_writes_are_refused_by_seq() -> None:
    c = Client()
    c.received()
    c.send(n.Subscribe("d", b"\x00"))
    c.send(n.Update("d", _update("a"), 4))
    c.session.join_failed("d", "room_unavailable", "load failed")
    errs = [(m.code, m.doc_id, m.seq) for m in c.received() if isinstance(m, n.Error)]
    assert errs == [("room_unavailable", "d", 0), ("not_subscribed", "d", 4)]


def test_subscribing_again_redoes_the_exchange() -> None:
    c = Client()
    c.received()
    room = FakeRoom()
    c.join("d", room)
    c.send(n.Subscribe("d", b"\x00"))
    assert [type(m) for m in c.received()] == [n.SyncStep2, n.SyncStep1]
    assert c.session.events() == []  # no second join


def test_unsubscribe_leaves_and_is_idempotent_without_an_answer() -> None:
    c = Client()
    c.received()
    room = FakeRoom()
    c.join("d", room)
    c.send(n.Unsubscribe("d"))
    assert c.session.events() == [LeaveRoom("d", room)]
    c.send(n.Unsubscribe("d"))
    c.send(n.Unsubscribe("never"))
    assert c.received() == [] and c.session.events() == []


# -- 3., 4. writes and acks ----------------------------------------------------------------------------


def test_step1_is_answered_with_what_the_client_misses() -> None:
    c = Client()
    c.received()
    room = FakeRoom()
    c.join("d", room)
    room.doc.apply_update(_update("new"))
    c.send(n.SyncStep1("d", b"\x00"))
    [answer] = c.received()
    assert answer == n.SyncStep2("d", room.sync_step2(b"\x00"), 0)


def test_an_ack_comes_only_after_the_store_committed() -> None:
    c = Client()
    c.received()
    room = FakeRoom()
    c.join("d", room)
    c.send(n.Update("d", _update("a"), 1))
    c.send(n.SyncStep2("d", _update("b"), 2))
    assert c.received() == []
    room.commit()
    assert c.received() == [n.Ack("d", 1), n.Ack("d", 2)]


def test_no_ack_is_sent_for_seq_zero() -> None:
    c = Client()
    c.received()
    room = FakeRoom()
    c.join("d", room)
    c.send(n.Update("d", _update("a"), 0))
    room.commit()
    assert c.received() == []


@pytest.mark.parametrize(("setup", "code"), [("unsubscribed", "not_subscribed"), ("read_only", "forbidden"),
                                             ("garbage", "bad_update"), ("down", "room_unavailable")])
def test_a_refused_write_names_doc_and_seq_and_later_writes_wait_for_a_resubscribe(setup: str, code: str) -> None:
    c = Client(token="ro" if setup == "read_only" else "rw")
    c.received()
    room = FakeRoom(down=setup == "down")
    if setup != "unsubscribed":
        c.join("d", room)
    bad = b"\xff\xfe" if setup == "garbage" else _update("a")
    c.send(n.Update("d", bad, 7))
    c.send(n.Update("d", _update("b"), 8))
    errs = [(m.code, m.doc_id, m.seq) for m in c.received() if isinstance(m, n.Error)]
    later = code if code in ("not_subscribed", "forbidden") else "resync_required"
    assert errs == [(code, "d", 7), (later, "d", 8)]
    room.commit()
    assert not any(isinstance(m, n.Ack) for m in c.received())  # nothing acked can cover seq 7


def test_after_a_resubscribe_writes_are_taken_again() -> None:
    c = Client()
    c.received()
    room = FakeRoom()
    c.join("d", room)
    c.send(n.Update("d", b"\xff\xfe", 1))
    c.send(n.Subscribe("d", b"\x00"))
    c.send(n.Update("d", _update("c"), 2))
    room.commit()
    assert n.Ack("d", 2) in c.received()


def test_an_expired_token_ends_the_session() -> None:
    c = Client()
    c.received()
    c.session.token_expired()
    [err] = c.received()
    assert (err.code, err.fatal) == ("unauthorized", True)  # type: ignore[union-attr]
    assert c.session.events()[-1] == CloseConnection(4001, "token expired")


# -- 5. presence -------------------------------------------------------------------------------------------


def test_presence_of_another_connections_client_is_refused_as_not_owner() -> None:
    room = FakeRoom()
    room.awareness.apply(encode_awareness([AwarenessEntry(1, 1, state_json({"n": "a"}))]), "owner", principal="x")
    c = Client(token="ro")
    c.received()
    c.join("d", room)
    c.send(n.Awareness("d", encode_awareness([AwarenessEntry(1, 2, state_json({"n": "spoof"}))])))
    [err] = c.received()
    assert (err.code, err.doc_id, err.fatal) == ("not_owner", "d", False)  # type: ignore[union-attr]


# -- 6. limits of the client --------------------------------------------------------------------------------


def test_forwarded_updates_are_cut_to_the_client_limit_and_uncuttable_ones_refused() -> None:
    c = Client(info={"max_message_size": 300})
    c.received()
    src: Doc[Any] = Doc()
    m = src.get("m", type=Map)
    with src.transaction():
        for i in range(50):
            m[f"k{i}"] = f"value {i}"
    big = bytes(src.get_update())
    c.session.deliver_update("d", big, {})
    parts = c.received()
    assert len(parts) > 1 and all(isinstance(p, n.Update) for p in parts)
    assert all(len(n.encode(p)) <= 300 for p in parts)
    one: Doc[Any] = Doc()
    one.get("m", type=Map)["x"] = "y" * 1000
    c.session.deliver_update("d", bytes(one.get_update()), {})
    [err] = c.received()
    assert (err.code, err.doc_id) == ("too_large", "d")  # type: ignore[union-attr]
