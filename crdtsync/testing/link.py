"""A simulated link: one native-protocol connection between two peers, rebuilt on reconnect.

Each :class:`SimLink` joins two peers. While it is up it holds one
:class:`~crdtsync.protocol.Connection` per end (:class:`LinkSide`): the peer created first plays
the client (sends ``Hello``), the other the server (answers ``Welcome``). Every (re)connect
is a new *generation*: frames of an older generation still in flight are discarded on arrival,
as bytes of a closed socket would be.

A side numbers the writes it sends (``Update`` and ``SyncStep2`` carry ``seq``) per document,
1, 2, 3..., and remembers which ledger writes each seq covers; the receiving side answers with
a cumulative ``Ack(doc, n)`` once everything up to ``n`` is durable *and integrated* (a
``SyncStep2`` covers every lower seq, since it answers a full state vector). A frame stored
while yrs keeps its update pending (an earlier update it depends on is missing) waits in
:attr:`LinkSide.integrating` until a later update makes the document's state vector cover its
writes, or forever. Numbering per document, not per connection, lets a receiver on a lossy
link tell a gap from a write on another document.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..protocol import Connection

__all__ = ["LinkSide", "SimLink"]


@dataclass(eq=False)
class LinkSide:
    """One end of a link's current connection, owned by ``peer``."""

    peer: str
    other: str
    conn: Connection
    generation: int
    step1_sent: set[str] = field(default_factory=set)
    next_seq: dict[str, int] = field(default_factory=dict)
    sent: dict[str, dict[int, tuple[int, ...]]] = field(default_factory=dict)  # doc -> seq -> write ids
    # doc -> seq -> (is SyncStep2, write ids): stored here, but the writes are not integrated yet
    integrating: dict[str, dict[int, tuple[bool, tuple[int, ...]]]] = field(default_factory=dict)
    durable: dict[str, dict[int, bool]] = field(default_factory=dict)  # doc -> seq -> is SyncStep2
    acked: dict[str, int] = field(default_factory=dict)  # doc -> last seq we acked

    def seq(self, doc_id: str, write_ids: tuple[int, ...]) -> int:
        """A fresh seq for a write on ``doc_id`` covering ``write_ids``."""
        n = self.next_seq.get(doc_id, 0) + 1
        self.next_seq[doc_id] = n
        self.sent.setdefault(doc_id, {})[n] = write_ids
        return n

    def ack_point(self, doc_id: str) -> int:
        """The highest seq ``n`` on ``doc_id`` such that everything the other side sent with a seq
        <= ``n`` is durable and integrated here; drops the entries it covers."""
        durable = self.durable.get(doc_id, {})
        point = self.acked.get(doc_id, 0)
        point = max([point, *(s for s, step2 in durable.items() if step2)])
        while point + 1 in durable:
            point += 1
        for s in [s for s in durable if s <= point]:
            del durable[s]
        waiting = self.integrating.get(doc_id, {})
        for s in [s for s in waiting if s <= point]:
            del waiting[s]  # covered by a later SyncStep2
        return point

    def take_acked(self, doc_id: str, upto: int) -> list[int]:
        """The write ids this side sent on ``doc_id`` with seq <= ``upto`` (now acknowledged)."""
        sent = self.sent.get(doc_id, {})
        out: list[int] = []
        for s in [s for s in sent if s <= upto]:
            out.extend(sent.pop(s))
        return out


class SimLink:
    """The link between peers ``a`` (client end) and ``b`` (server end)."""

    def __init__(self, a: str, b: str):
        self.a = a
        self.b = b
        self.generation = 0
        self.sides: dict[str, LinkSide] = {}
        self.partitioned = False
        self.closing = False
        self.timers: list[object] = []

    @property
    def names(self) -> tuple[str, str]:
        return self.a, self.b

    @property
    def up(self) -> bool:
        """True while a connection exists (handshaking or open)."""
        return bool(self.sides)

    @property
    def open(self) -> bool:
        """True when both ends completed the handshake."""
        return bool(self.sides) and all(s.conn.is_open for s in self.sides.values())

    def side(self, name: str) -> LinkSide | None:
        return self.sides.get(name)

    def other(self, name: str) -> str:
        return self.b if name == self.a else self.a
