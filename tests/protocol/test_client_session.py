"""crdtsync.protocol.client_session: the client role of document sync, one test per rule in
the module docstring, driven by messages (no sockets, no clock)."""

from __future__ import annotations

import pytest

from crdtsync import Replica
from crdtsync.errors import MessageTooLargeError, RemoteError
from crdtsync.protocol import native as n
from crdtsync.protocol.client_session import (
    Acked,
    ApplyUpdate,
    ClientSession,
    DocError,
    ResubscribeLater,
    Subscribed,
    Synced,
)
from crdtsync.protocol.connection import Connection
from crdtsync.protocol.state import Role


def connected(replica: Replica, info: dict[str, n.Scalar] | None = None) -> tuple[ClientSession, Connection]:
    """A session attached to a client Connection that completed its handshake."""
    client, server = Connection(Role.CLIENT), Connection(Role.SERVER)
    client.send_hello("t")
    for frame in client.bytes_to_send():
        server.receive_bytes(frame)
    server.accept("s1", info)
    for frame in server.bytes_to_send():
        client.receive_bytes(frame)
    client.events_received()
    session = ClientSession(replica)
    session.attach(client)
    return session, client


def sent(conn: Connection) -> list[n.NativeMessage]:
    return [n.decode(f) for f in conn.bytes_to_send()]


def test_subscribe_sends_the_state_vector_and_marks_held_content_dirty() -> None:
    r = Replica()
    session, conn = connected(r)
    session.subscribe("empty")
    r.write(("full", "k"), 1)
    session.subscribe("full")
    assert sent(conn) == [n.Subscribe("empty", b"\x00"), n.Subscribe("full", r.state_vector("full"))]
    assert not session.doc("empty").dirty and session.doc("full").dirty
    assert session.events() == [Subscribed("empty"), Subscribed("full")]
    session.subscribe("full")  # already active: nothing
    assert sent(conn) == []


def test_nothing_is_sent_without_a_connection() -> None:
    session = ClientSession(Replica())
    session.subscribe("d")
    session.local_update("d", b"\x01")
    assert not session.doc("d").active and session.doc("d").dirty and session.events() == []


def test_the_relays_step2_is_applied_and_its_step1_answered_with_an_acked_write() -> None:
    r = Replica()
    session, conn = connected(r)
    session.subscribe("d")
    sent(conn)
    session.events()
    r.write(("d", "mine"), 1)  # the relay lacks this
    other = Replica()
    other.write(("d", "theirs"), 2)
    session.receive(n.SyncStep2("d", other.get_update("d")))
    session.receive(n.SyncStep1("d", b"\x00"))
    assert session.events()[:2] == [ApplyUpdate("d", other.get_update("d")), Synced("d")]
    [answer] = sent(conn)
    assert isinstance(answer, n.SyncStep2) and answer.seq > 0 and answer.update == r.get_update("d", b"\x00")
    d = session.doc("d")
    assert not d.synced and not d.acked  # synced only once our answer is acknowledged
    session.receive(n.Ack("d", answer.seq))
    assert d.synced and d.acked and session.events() == [Acked("d")]


def test_local_updates_go_out_numbered_and_a_cumulative_ack_clears_them() -> None:
    session, conn = connected(Replica())
    session.subscribe("d")
    session.local_update("d", b"u1")
    session.local_update("d", b"u2")
    updates = [m for m in sent(conn) if isinstance(m, n.Update)]
    assert [(u.update, u.seq > 0) for u in updates] == [(b"u1", True), (b"u2", True)]
    d = session.doc("d")
    assert list(d.pending) == [u.seq for u in updates]
    session.receive(n.Ack("d", updates[1].seq))
    assert not d.pending


def test_forbidden_makes_the_document_read_only_and_keeps_its_writes_dirty() -> None:
    session, conn = connected(Replica())
    session.subscribe("d")
    session.local_update("d", b"u")
    seq = next(m for m in sent(conn) if isinstance(m, n.Update)).seq
    session.receive(n.Error("forbidden", "read-only", "d", False, seq))
    d = session.doc("d")
    assert d.read_only and d.dirty and not d.pending
    session.local_update("d", b"v")  # not sent to a relay that refuses it
    assert sent(conn) == [] and d.dirty
    assert isinstance(session.events()[-1], DocError)


def test_a_refused_outstanding_write_resubscribes_and_an_old_refusal_is_ignored() -> None:
    session, conn = connected(Replica())
    session.subscribe("d")
    session.local_update("d", b"u")
    seq = next(m for m in sent(conn) if isinstance(m, n.Update)).seq
    session.events()
    session.receive(n.Error("bad_update", "no", "d", False, seq))
    d = session.doc("d")
    assert not d.active and d.dirty and session.events()[-1] == ResubscribeLater("d")
    session.subscribe("d")
    session.events()
    session.receive(n.Error("resync_required", "earlier", "d", False, seq + 1))  # sent before resubscribing
    assert d.active and not any(isinstance(e, ResubscribeLater) for e in session.events())


def test_not_subscribed_or_room_unavailable_without_a_seq_resubscribes() -> None:
    session, _ = connected(Replica())
    for code in ("not_subscribed", "room_unavailable"):
        session.subscribe("d")
        session.events()
        session.receive(n.Error(code, "", "d"))
        assert not session.doc("d").active and session.events()[-1] == ResubscribeLater("d")


def test_a_fatal_error_raises() -> None:
    session, _ = connected(Replica())
    with pytest.raises(RemoteError) as info:
        session.receive(n.Error("unauthorized", "token expired", None, True))
    assert info.value.code == "unauthorized"


def test_detach_makes_unacknowledged_writes_dirty_and_the_next_sync_resends_them() -> None:
    r = Replica()
    session, _conn = connected(r)
    session.subscribe("d")
    r.write(("d", "k"), 1)
    session.local_update("d", r.get_update("d"))
    session.detach()
    d = session.doc("d")
    assert d.dirty and not d.active and not d.pending
    session2_conn = connected(r)[1]
    session.attach(session2_conn)
    session.subscribe("d")
    session.receive(n.SyncStep1("d", b"\x00"))
    answer = next(m for m in sent(session2_conn) if isinstance(m, n.SyncStep2))
    assert answer.update == r.get_update("d", b"\x00") and answer.seq > 0


def test_updates_are_cut_to_the_relays_limit_and_an_uncuttable_one_stays_dirty() -> None:
    r = Replica()
    session, conn = connected(r, {"max_message_size": 400})
    session.subscribe("d")
    sent(conn)
    r.write_many("d", {f"k{i}": f"value {i}" for i in range(100)}, depth=1)
    session.local_update("d", r.get_update("d"))
    parts = [m for m in sent(conn) if isinstance(m, n.Update)]
    assert len(parts) > 1 and all(len(n.encode(p)) <= 400 for p in parts)
    r.write(("d", "big"), "x" * 1000)
    before = r.state_vector("d")
    r.write(("d", "big2"), "y" * 1000)
    session.local_update("d", r.get_update("d", before))
    assert sent(conn) == [] and session.doc("d").dirty
    assert isinstance(session.events()[-1].error, MessageTooLargeError)  # type: ignore[union-attr]


def test_messages_for_documents_not_active_are_ignored() -> None:
    session, _ = connected(Replica())
    session.receive(n.Update("never", b"\x01\x02"))
    session.receive(n.Ack("never", 3))
    assert session.events() == []
