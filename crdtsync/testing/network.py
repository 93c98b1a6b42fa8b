"""A deterministic, seeded, simulated network of replicas on a :class:`~crdtsync.clock.FakeClock`,
speaking the real native protocol.

Build one, make peers edit, break the network, then heal it and check the outcome::

    clock = FakeClock()
    net = SimNetwork(seed=7, clock=clock, peers=3)          # peers "p0", "p1", "p2", full mesh
    net.set_faults(LinkFaults(drop=0.2, duplicate=0.1, reorder=0.3, corrupt=0.05))
    net.peer("p0").edit(SetValue("shop", "milk", 2))
    net.partition("p0", "p1")
    net.crash("p2")
    await net.run_until_quiet()
    net.restart("p2")                                        # reloads what p2 had persisted
    await net.heal_all()                                     # reliable links, full resync
    assert_converged(net.named_replicas())
    assert_no_acknowledged_loss(net)

How it works:

- Every pair of peers is joined by a :class:`~crdtsync.testing.link.SimLink` holding two real
  :class:`~crdtsync.protocol.Connection` objects (sans-I/O), one per end. Links carry the
  **encoded frames** those connections produce; receivers feed them to ``receive_bytes`` and
  act on ``events_received()``. The first-created peer of a pair is the client (``Hello``), the
  other the server (``Welcome``). A handshake that does not finish within
  ``handshake_timeout`` is abandoned and retried after ``reconnect_delay``.
- Once open, each end sends ``SyncStep1`` (its state vector) for every document it has and
  answers the other's with ``SyncStep2``; a ``SyncStep1`` for a document it never offered is
  answered with its own ``SyncStep1`` too. A local transaction is recorded in the write
  ledger (:attr:`SimNetwork.writes`) and sent as an ``Update`` on every open link. Updates a
  peer receives are not forwarded (no echo); peers that missed something catch up through the
  handshake (on reconnect, heal, restart, and in :meth:`SimNetwork.heal_all`).
- Persistence: each peer has a :class:`SimStore` holding its own writes and the update bytes
  it received. With ``persist_delay=0`` everything is stored at once; with a delay, it is
  buffered and flushed by a timer, and a crash loses the buffer. After a flush the peer sends
  a cumulative ``Ack(doc, seq)`` on each link for what is now durable *and integrated*: an
  update yrs keeps pending (an earlier update it depends on is missing) is acknowledged only
  once a later update lets it integrate, and a ``SyncStep2`` claims only the writes its sender
  integrated. A write is *acknowledged* (:attr:`WriteRecord.acked_by`) when its author
  receives such an Ack, and must never be lost.
- Faults act on frames (:class:`LinkFaults`): drop, duplicate, reorder, delay, corrupt,
  truncate; partitions close the link until healed; crashes close every link of the peer. A
  damaged frame must raise a typed :class:`~crdtsync.errors.ProtocolError` from the
  receiver's ``receive_bytes`` (recorded in :attr:`SimNetwork.protocol_errors`); the
  connection then sends its fatal ``Error``, closes, and reconnects. A damaged frame that is
  accepted is recorded in :attr:`SimNetwork.undetected_damage`.
- The ledger is simulator bookkeeping that travels *beside* each frame (which writes a frame
  covers), never inside it. Every random choice comes from one ``random.Random(seed)``, so a
  seed and a schedule replay exactly; :attr:`SimNetwork.trace` records what happened.

Run a generated :class:`~crdtsync.testing.strategies.Schedule` with :meth:`SimNetwork.run_schedule`.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import random
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from ..clock import FakeClock
from ..errors import ProtocolError, SimulationError
from ..origins import Origin
from ..protocol import DEFAULT_MAX_MESSAGE_SIZE, Connection, Role, State, native
from ..protocol.native import MessageType
from ..replica import Replica
from .contains import decode_state_vector
from .faults import RELIABLE, LinkFaults, TraceEvent, corrupt_frame, truncate_frame
from .ledger import SimStore, WriteRecord
from .link import LinkSide, SimLink
from .simpeer import SimPeer

__all__ = [
    "LinkFaults",
    "MessageKind",
    "ProtocolErrorRecord",
    "SimLink",
    "SimMessage",
    "SimNetwork",
    "SimPeer",
    "SimStore",
    "TraceEvent",
    "WriteRecord",
]

MessageKind = MessageType
"""The kinds of frame on a link: the native protocol's message types."""


@dataclass(frozen=True, slots=True)
class SimMessage:
    """One frame in flight on a simulated link. ``frame`` is exactly what the receiver's
    connection gets; ``write_ids`` (ledger bookkeeping, not on the wire) are the writes the
    frame covers; ``damage`` is ``"corrupt"`` or ``"truncate"`` when a fault damaged it."""

    src: str
    dst: str
    frame: bytes
    generation: int
    seq: int
    write_ids: tuple[int, ...] = ()
    damage: str = ""

    @property
    def kind(self) -> str:
        """The frame's message type name (``"update"``, ``"sync_step1"``...), or ``"garbled"``."""
        try:
            return native.peek(self.frame).type.name.lower()
        except ProtocolError:
            return "garbled"


@dataclass(frozen=True, slots=True)
class ProtocolErrorRecord:
    """A typed protocol error a receiver raised on a frame (``error``), and the frame's damage."""

    time: float
    peer: str
    src: str
    error: ProtocolError
    damage: str


class _Timer:
    __slots__ = ("cancelled", "fn", "when")

    def __init__(self, when: float, fn: Callable[[], None]):
        self.when = when
        self.fn = fn
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class SimNetwork:
    """Peers in a full mesh with seeded faults on a :class:`~crdtsync.clock.FakeClock`.

    ``peers`` is a count (names ``p0``, ``p1``...) or a sequence of names. ``persist_delay``
    (seconds, default 0: write-through) is how long a peer buffers updates before storing them;
    a crash loses that buffer. ``max_steps`` bounds :meth:`run_until_quiet`.
    ``handshake_timeout`` and ``reconnect_delay`` (seconds) govern reconnection;
    ``max_message_size`` is every connection's receive limit.
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        clock: FakeClock | None = None,
        peers: int | Sequence[str] = 2,
        faults: LinkFaults = RELIABLE,
        persist_delay: float = 0.0,
        max_steps: int = 100_000,
        handshake_timeout: float = 0.5,
        reconnect_delay: float = 0.01,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    ):
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise SimulationError(f"seed must be an int, got {seed!r}")
        if persist_delay < 0:
            raise SimulationError(f"persist_delay must be >= 0, got {persist_delay!r}")
        if max_steps < 1:
            raise SimulationError(f"max_steps must be >= 1, got {max_steps!r}")
        if not handshake_timeout > 0:
            raise SimulationError(f"handshake_timeout must be > 0, got {handshake_timeout!r}")
        if reconnect_delay < 0:
            raise SimulationError(f"reconnect_delay must be >= 0, got {reconnect_delay!r}")
        if max_message_size < 1:
            raise SimulationError(f"max_message_size must be >= 1, got {max_message_size!r}")
        self.seed = seed
        self.rng = random.Random(seed)
        self.clock = clock if clock is not None else FakeClock()
        self.persist_delay = persist_delay
        self.max_steps = max_steps
        self.handshake_timeout = handshake_timeout
        self.reconnect_delay = reconnect_delay
        self.max_message_size = max_message_size
        self.default_faults = faults
        self.link_faults: dict[tuple[str, str], LinkFaults] = {}
        self.peers: dict[str, SimPeer] = {}
        self.links: dict[tuple[str, str], SimLink] = {}
        self.writes: dict[int, WriteRecord] = {}
        self.trace: list[TraceEvent] = []
        self.protocol_errors: list[ProtocolErrorRecord] = []
        self.undetected_damage: list[SimMessage] = []
        self._queue: list[tuple[float, int, SimMessage]] = []
        self._timers: list[tuple[float, int, _Timer]] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._seq = itertools.count()
        self._write_ids = itertools.count(1)
        self.delivered = 0
        names = [f"p{i}" for i in range(peers)] if isinstance(peers, int) else list(peers)
        if len(set(names)) != len(names) or not all(isinstance(n, str) and n for n in names):
            raise SimulationError(f"peer names must be distinct non-empty strings, got {names!r}")
        for name in names:
            self.add_peer(name)

    # -- peers ------------------------------------------------------------------------------
    def add_peer(self, name: str | None = None, *, persist_delay: float | None = None) -> SimPeer:
        """Add a peer (named ``p<N>`` by default) linked to every other peer."""
        name = name if name is not None else f"p{len(self.peers)}"
        if name in self.peers:
            raise SimulationError(f"peer {name!r} already exists")
        delay = self.persist_delay if persist_delay is None else persist_delay
        peer = SimPeer(self, name, len(self.peers), delay)
        for other in self.peers:
            link = SimLink(other, name)
            self.links[(other, name)] = link
        self.peers[name] = peer
        for other in list(self.peers):
            if other != name:
                self._connect(self._link(other, name))
        return peer

    def peer(self, name: str) -> SimPeer:
        try:
            return self.peers[name]
        except KeyError:
            raise SimulationError(f"no peer named {name!r} (have {sorted(self.peers)})") from None

    def replicas(self) -> list[Replica]:
        """The replicas of the peers that are up, in peer order."""
        return [p.replica for p in self.peers.values() if p.replica is not None]

    def named_replicas(self) -> dict[str, Replica]:
        return {n: p.replica for n, p in self.peers.items() if p.replica is not None}

    def link(self, a: str, b: str) -> SimLink:
        """The link between ``a`` and ``b`` (either order)."""
        self.peer(a)
        self.peer(b)
        if a == b:
            raise SimulationError("a peer has no link to itself")
        return self._link(a, b)

    def _link(self, a: str, b: str) -> SimLink:
        return self.links.get((a, b)) or self.links[(b, a)]

    # -- faults ------------------------------------------------------------------------------
    def set_faults(self, faults: LinkFaults, *, src: str | None = None, dst: str | None = None) -> None:
        """Set faults on every link (no names), on links from ``src`` / to ``dst``, or one link."""
        if src is None and dst is None:
            self.default_faults = faults
            self.link_faults.clear()
            return
        for a in self.peers:
            for b in self.peers:
                if a != b and (src is None or a == src) and (dst is None or b == dst):
                    self.link_faults[(a, b)] = faults

    def faults(self, src: str, dst: str) -> LinkFaults:
        return self.link_faults.get((src, dst), self.default_faults)

    def partition(self, a: str, b: str) -> None:
        """Cut the link between ``a`` and ``b``: its connection closes, frames in flight are
        lost, and it stays down until :meth:`heal`."""
        link = self.link(a, b)
        link.partitioned = True
        self._log("partition", a, b)
        self._close(link, reconnect=False)

    def isolate(self, name: str) -> None:
        """Cut every link of ``name`` (the peer goes offline but keeps editing)."""
        for other in self.peers:
            if other != name:
                self.partition(name, other)

    def heal(self, a: str, b: str) -> None:
        """Restore the link between ``a`` and ``b``: reconnect and run the sync handshake."""
        link = self.link(a, b)
        if not link.partitioned:
            return
        link.partitioned = False
        self._log("heal", a, b)
        self._connect(link)

    def linked(self, a: str, b: str) -> bool:
        """True unless the link between ``a`` and ``b`` is partitioned."""
        return not self.link(a, b).partitioned

    async def heal_all(self, *, max_rounds: int = 5) -> None:
        """Make every link reliable, restart crashed peers, heal partitions, reconnect every
        link, then run sync rounds (SyncStep1 both ways on every link) until all replicas hold
        the same state vectors and delete sets (at most ``max_rounds``).

        After this, replicas should have converged: check with
        :func:`~crdtsync.testing.assertions.assert_converged`.
        """
        await self._drain_tasks()
        self.default_faults = RELIABLE
        self.link_faults.clear()
        self._log("heal", detail="all")
        for link in self.links.values():
            link.partitioned = False
        for name, peer in self.peers.items():
            if not peer.up:
                self.restart(name)
        for link in self.links.values():
            if not link.open:
                self._connect(link)
        await self.run_until_quiet()
        for _ in range(max_rounds):
            for peer in self.peers.values():
                peer.flush()
            await self.run_until_quiet()
            if self._in_sync():
                return
            for link in self.links.values():
                if link.open:
                    for name, side in link.sides.items():
                        self.peers[name]._resync(side)
                        self._pump(side)
                else:
                    self._connect(link)
            await self.run_until_quiet()

    def _in_sync(self) -> bool:
        replicas = self.replicas()
        doc_ids = sorted({d for r in replicas for d in r.doc_ids()})
        for doc_id in doc_ids:
            states = set()
            for r in replicas:
                sv = r.state_vector(doc_id)
                states.add((tuple(sorted(decode_state_vector(sv).items())), r.get_update(doc_id, sv)))
            if len(states) > 1:
                return False
        return True

    # -- crashes -----------------------------------------------------------------------------
    def crash(self, name: str) -> None:
        """Stop ``name`` at once: its replica, its client and unpersisted updates are gone, its
        links close (frames in flight are lost) until :meth:`restart`."""
        peer = self.peer(name)
        if not peer.up:
            return
        for other in self.peers:
            if other != name:
                self._close(self._link(name, other), reconnect=False)
        peer._crash()
        self._log("crash", name)

    def restart(self, name: str) -> SimPeer:
        """Bring ``name`` back with a new replica (new client id) loaded from its store, and
        reconnect every link that is not partitioned."""
        peer = self.peer(name)
        if peer.up:
            return peer
        peer._restart()
        self._log("restart", name, detail=str(peer.incarnation))
        for other in self.peers:
            if other != name:
                self._connect(self._link(name, other))
        return peer

    # -- connections -------------------------------------------------------------------------
    def _connect(self, link: SimLink) -> None:
        """Open a new connection on ``link`` (closing any current one) when both ends are up
        and the link is not partitioned."""
        self._close(link, reconnect=False, log=False)
        a, b = self.peers[link.a], self.peers[link.b]
        if link.partitioned or not a.up or not b.up:
            return
        link.generation += 1
        gen = link.generation
        limit = self.max_message_size
        link.sides = {
            link.a: LinkSide(link.a, link.b, Connection(Role.CLIENT, max_message_size=limit), gen),
            link.b: LinkSide(link.b, link.a, Connection(Role.SERVER, max_message_size=limit), gen),
        }
        self._log("connect", link.a, link.b, detail=str(gen))
        client = link.sides[link.a]
        client.conn.send_hello(client={"peer": link.a})
        self._pump(client)

        def timeout() -> None:
            if link.generation == gen and link.up and not link.open:
                self._log("handshake_timeout", link.a, link.b, detail=str(gen))
                self._close(link, reconnect=True)

        link.timers.append(self._call_later(self.handshake_timeout, timeout))

    def _close(self, link: SimLink, *, reconnect: bool, log: bool = True) -> None:
        for t in link.timers:
            if isinstance(t, _Timer):
                t.cancel()
        link.timers.clear()
        link.closing = False
        if link.sides:
            for side in link.sides.values():
                side.conn.close()
            link.sides = {}
            link.generation += 1
            if log:
                self._log("close", link.a, link.b)
        if reconnect and not link.partitioned:
            gen = link.generation
            link.timers.append(
                self._call_later(self.reconnect_delay, lambda: self._connect(link) if link.generation == gen else None)
            )

    def _close_link_of(self, side: LinkSide, *, reconnect: bool) -> None:
        """``side``'s connection hit a fatal error: close its link once the fatal ``Error``
        frame had time to arrive, then reconnect."""
        link = self._link(side.peer, side.other)
        if link.closing or link.generation != side.generation:
            return
        link.closing = True
        gen = link.generation
        wait = max(self.faults(side.peer, side.other).worst_delay, self.faults(side.other, side.peer).worst_delay)

        def close() -> None:
            if link.generation == gen:
                self._close(link, reconnect=reconnect)

        link.timers.append(self._call_later(wait + 1e-4, close))

    def _opened(self, side: LinkSide) -> None:
        link = self._link(side.peer, side.other)
        self.peers[side.peer]._on_open(side)
        if link.open:
            self._log("open", link.a, link.b, detail=str(link.generation))

    def _is_current(self, side: LinkSide) -> bool:
        link = self._link(side.peer, side.other)
        return link.generation == side.generation and link.sides.get(side.peer) is side

    def _open_sides(self, name: str) -> list[LinkSide]:
        """``name``'s ends of every link whose connection is open on its side."""
        out: list[LinkSide] = []
        for other in self.peers:
            if other != name:
                side = self._link(name, other).sides.get(name)
                if side is not None and side.conn.is_open:
                    out.append(side)
        return out

    # -- sending -----------------------------------------------------------------------------
    def _send(self, side: LinkSide, msg: native.NativeMessage, write_ids: tuple[int, ...]) -> None:
        """Queue ``msg`` on ``side``'s connection and put the resulting frames on the link."""
        if not side.conn.is_open or not self._is_current(side):
            return
        side.conn.send(msg)
        self._pump(side, write_ids)

    def _pump(self, side: LinkSide, write_ids: tuple[int, ...] = ()) -> None:
        for frame in side.conn.bytes_to_send():
            self._transmit(side, frame, write_ids)

    def _transmit(self, side: LinkSide, frame: bytes, write_ids: tuple[int, ...]) -> None:
        src, dst = side.peer, side.other
        seq = next(self._seq)
        try:
            detail = f"{native.peek(frame).type.name.lower()}#{seq}"
        except ProtocolError:
            detail = f"garbled#{seq}"
        f = self.faults(src, dst)
        rng = self.rng
        if f.drop and rng.random() < f.drop:
            self._log("drop", src, dst, detail)
            return
        copies = 2 if f.duplicate and rng.random() < f.duplicate else 1
        if copies == 2:
            self._log("duplicate", src, dst, detail)
        self._log("send", src, dst, detail)
        for _ in range(copies):
            data, damage = frame, ""
            if f.truncate and rng.random() < f.truncate:
                data, damage = truncate_frame(frame, rng), "truncate"
            elif f.corrupt and rng.random() < f.corrupt:
                data, damage = corrupt_frame(frame, rng), "corrupt"
            if damage:
                self._log(damage, src, dst, detail)
            delay = f.min_delay if f.min_delay == f.max_delay else rng.uniform(f.min_delay, f.max_delay)
            if f.reorder and rng.random() < f.reorder:
                delay += rng.uniform(0.0, f.reorder_delay)
                self._log("reorder", src, dst, detail)
            when = round(self.clock.now() + delay, 4)
            msg = SimMessage(src, dst, data, side.generation, seq, write_ids, damage)
            heapq.heappush(self._queue, (when, next(self._seq), msg))

    # -- receiving ---------------------------------------------------------------------------
    def _deliver(self, msg: SimMessage) -> None:
        detail = f"{msg.kind}#{msg.seq}"
        link = self._link(msg.src, msg.dst)
        side = link.sides.get(msg.dst)
        if side is None or side.generation != msg.generation or not self.peers[msg.dst].up:
            self._log("lost_closed", msg.src, msg.dst, detail)
            return
        self.delivered += 1
        self._log("deliver", msg.src, msg.dst, detail)
        conn = side.conn
        before = conn.state
        try:
            conn.receive_bytes(msg.frame)
        except ProtocolError as exc:
            self.protocol_errors.append(ProtocolErrorRecord(self.clock.now(), msg.dst, msg.src, exc, msg.damage))
            self._log("protocol_error", msg.src, msg.dst, f"{type(exc).__name__}:{msg.damage}")
            self._pump(side)  # the fatal Error the connection queued
            self._close_link_of(side, reconnect=True)
            return
        if msg.damage and before not in (State.CLOSING, State.CLOSED):
            self.undetected_damage.append(msg)
            self._log("undetected_damage", msg.src, msg.dst, detail)
        peer = self.peers[msg.dst]
        for event in conn.events_received():
            if not self._is_current(side):
                break
            peer._on_message(side, event, msg.write_ids)
        if self._is_current(side):
            self._pump(side)  # automatic answers (Pong)

    def _deliver_due(self) -> int:
        n = 0
        now = self.clock.now()
        while self._queue and self._queue[0][0] <= now:
            _, _, msg = heapq.heappop(self._queue)
            n += 1
            self._deliver(msg)
        while self._timers and self._timers[0][0] <= now:
            _, _, timer = heapq.heappop(self._timers)
            if not timer.cancelled:
                n += 1
                timer.fn()
        return n

    # -- time --------------------------------------------------------------------------------
    def _call_later(self, delay: float, fn: Callable[[], None]) -> _Timer:
        timer = _Timer(round(self.clock.now() + max(0.0, delay), 6), fn)
        heapq.heappush(self._timers, (timer.when, next(self._seq), timer))
        return timer

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # closed outside a loop: nothing left to run it on
            coro.close()
            return
        task = loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _drain_tasks(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _next_time(self) -> float | None:
        while self._timers and self._timers[0][2].cancelled:
            heapq.heappop(self._timers)
        times = [q[0][0] for q in (self._queue, self._timers) if q]
        return min(times) if times else None

    @property
    def in_flight(self) -> int:
        return len(self._queue)

    def frames_in_flight(self) -> list[SimMessage]:
        """The frames on the links now, in delivery order."""
        return [msg for _, _, msg in sorted(self._queue)]

    async def run_for(self, seconds: float) -> None:
        """Advance time by ``seconds``, delivering every frame and firing every timer that
        falls due meanwhile."""
        await self._drain_tasks()
        end = self.clock.now() + max(0.0, seconds)
        steps = 0
        while True:
            self._deliver_due()
            nxt = self._next_time()
            if nxt is None or nxt > end:
                break
            await self.clock.advance(max(0.0, nxt - self.clock.now()))
            steps += 1
            if steps > self.max_steps:
                raise SimulationError(f"run_for did not finish within max_steps={self.max_steps}")
        await self.clock.advance(max(0.0, end - self.clock.now()))
        self._deliver_due()
        await self._drain_tasks()

    async def run_until_quiet(self) -> None:
        """Deliver frames and fire timers (persistence, handshake, reconnect) until nothing is
        in flight or pending.

        Raises :class:`~crdtsync.errors.SimulationError` after ``max_steps`` rounds (a link
        that drops every frame keeps reconnecting forever: heal it first).
        """
        await self._drain_tasks()
        steps = 0
        while True:
            self._deliver_due()
            nxt = self._next_time()
            if nxt is None:
                await self._drain_tasks()
                return
            await self.clock.advance(max(0.0, nxt - self.clock.now()))
            steps += 1
            if steps > self.max_steps:
                raise SimulationError(f"network not quiet after max_steps={self.max_steps}")

    async def run_schedule(self, schedule: Any) -> None:
        """Execute a :class:`~crdtsync.testing.strategies.Schedule` step by step (edits on
        crashed peers are skipped and logged as ``skip_edit``). Does not heal at the end: call
        :meth:`heal_all` next, then the assertions."""
        for step in schedule.steps:
            await step.run(self)

    # -- ledger ------------------------------------------------------------------------------
    def _record_write(
        self, peer: SimPeer, doc_id: str, update: bytes, origin: Origin, start: int, end: int
    ) -> WriteRecord:
        wid = next(self._write_ids)
        record = WriteRecord(
            wid, peer.name, peer.incarnation, doc_id, update, origin, self.clock.now(), peer.client_id, start, end
        )
        self.writes[wid] = record
        self._log("edit", peer.name, detail=f"{doc_id}#{wid}")
        return record

    def acknowledged_writes(self) -> list[WriteRecord]:
        return [w for w in self.writes.values() if w.acknowledged]

    def _log(self, what: str, src: str = "", dst: str = "", detail: str = "") -> None:
        self.trace.append(TraceEvent(self.clock.now(), what, src, dst, detail))

    def count(self, what: str) -> int:
        """How many trace events of kind ``what`` happened (``"drop"``, ``"corrupt"``...)."""
        return sum(1 for e in self.trace if e.what == what)

    def close(self) -> None:
        """Close every replica and connection (releases pycrdt observers)."""
        for link in self.links.values():
            self._close(link, reconnect=False, log=False)
        for peer in self.peers.values():
            peer._crash()
        self._queue.clear()
        self._timers.clear()

    async def aclose(self) -> None:
        """:meth:`close`, then wait for the clients' mutation shutdown to finish."""
        self.close()
        await self._drain_tasks()
