"""A deterministic, seeded, simulated network of replicas on a :class:`~crdtsync.clock.FakeClock`.

Build one, make peers edit, break the network, then heal it and check the outcome::

    clock = FakeClock()
    net = SimNetwork(seed=7, clock=clock, peers=3)          # peers "p0", "p1", "p2", full mesh
    net.set_faults(LinkFaults(drop=0.2, duplicate=0.1, reorder=0.3))
    net.peer("p0").edit(SetValue("shop", "milk", 2))
    net.partition("p0", "p1")
    net.crash("p2")
    await net.run_until_quiet()
    net.restart("p2")                                        # reloads what p2 had persisted
    await net.heal_all()                                     # reliable links, full resync
    assert_converged(net.replicas())
    assert_no_acknowledged_loss(net)

How it works:

- Every :class:`SimPeer` wraps a :class:`~crdtsync.replica.Replica`. A local transaction is
  recorded in the network's write ledger (:attr:`SimNetwork.writes`) and sent to every other
  peer as an ``UPDATE`` carrying the real binary Yjs update. Updates a peer receives are not
  forwarded (no echo); peers that missed something catch up through the sync handshake.
- The handshake is Yjs sync: on connect, heal and restart each side sends ``SYNC_STEP1`` (its
  state vector) per document and answers the other's with ``SYNC_STEP2`` (the diff).
- Persistence: each peer has a :class:`SimStore`. With ``persist_delay=0`` every applied update
  is stored at once; with a delay, updates are buffered and flushed by a clock timer, and a
  crash loses the buffer. After a flush the peer sends ``ACK`` to the author of every write it
  received and now durably holds: that write is then *acknowledged*
  (:attr:`WriteRecord.acked_by`) and must never be lost.
- Faults per directed link (:class:`LinkFaults`): drop, duplicate, reorder (an extra random
  delay), latency range, and partitions (a link that is down drops what it carries). Every
  random choice comes from one ``random.Random(seed)``, so a seed and a schedule replay exactly;
  :attr:`SimNetwork.trace` records what happened (sends, drops, duplicates, crashes...).

Messages are frozen :class:`SimMessage` dataclasses exchanged in memory; the native protocol
core (``crdtsync.protocol``) did not exist when this was written, so no bytes framing is
driven here yet.

Run a generated :class:`~crdtsync.testing.strategies.Schedule` with :meth:`SimNetwork.run_schedule`.
"""

from __future__ import annotations

import enum
import heapq
import itertools
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..clock import FakeClock, TimerHandle
from ..errors import SimulationError
from ..origins import RESTORE, Origin, OriginKind, remote_origin
from ..replica import Replica
from .contains import contains_write, decode_state_vector
from .ops import EditOp, Mutation, MutationResult, apply_mutation, rollback_mutation

__all__ = [
    "LinkFaults",
    "MessageKind",
    "SimMessage",
    "SimNetwork",
    "SimPeer",
    "SimStore",
    "TraceEvent",
    "WriteRecord",
]


class MessageKind(enum.Enum):
    SYNC_STEP1 = "sync1"  # payload: the sender's state vector
    SYNC_STEP2 = "sync2"  # payload: the update the receiver lacks
    UPDATE = "update"  # payload: one local transaction's update
    ACK = "ack"  # write_ids: writes the sender has persisted


@dataclass(frozen=True, slots=True)
class SimMessage:
    """One message on a simulated link."""

    kind: MessageKind
    src: str
    dst: str
    doc_id: str
    payload: bytes = b""
    write_ids: tuple[int, ...] = ()
    seq: int = 0


@dataclass(frozen=True, slots=True)
class TraceEvent:
    """One thing that happened, for determinism checks and for reading a failing run.

    ``what`` is one of: send, deliver, drop, duplicate, reorder, lost_partition, lost_down,
    partition, heal, crash, restart, persist, ack, edit, skip_edit, rollback.
    """

    time: float
    what: str
    src: str = ""
    dst: str = ""
    detail: str = ""


@dataclass(frozen=True, slots=True)
class LinkFaults:
    """Faults on a link. Probabilities are in ``[0, 1]``; delays in seconds (``min <= max``).

    ``reorder`` is the chance a message gets an extra delay of up to ``reorder_delay``, so
    later messages overtake it.
    """

    drop: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    min_delay: float = 0.001
    max_delay: float = 0.001
    reorder_delay: float = 0.05

    def __post_init__(self) -> None:
        for name in ("drop", "duplicate", "reorder"):
            p = getattr(self, name)
            if not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
                raise SimulationError(f"LinkFaults.{name} is a probability in [0, 1], got {p!r}")
        if not 0.0 <= self.min_delay <= self.max_delay:
            raise SimulationError(
                f"LinkFaults needs 0 <= min_delay <= max_delay, got {self.min_delay!r}, {self.max_delay!r}"
            )
        if self.reorder_delay < 0:
            raise SimulationError(f"LinkFaults.reorder_delay must be >= 0, got {self.reorder_delay!r}")


RELIABLE = LinkFaults()


@dataclass
class WriteRecord:
    """A local transaction some peer made: the ledger entry the loss check works from."""

    id: int
    peer: str
    incarnation: int
    doc_id: str
    update: bytes
    origin: Origin
    time: float
    client: int = 0
    start: int = 0
    end: int = 0
    persisted_by: set[str] = field(default_factory=set)
    acked_by: set[str] = field(default_factory=set)

    @property
    def acknowledged(self) -> bool:
        """True once a peer other than the author persisted it and the author heard so."""
        return bool(self.acked_by)

    def contained_in(self, replica: Replica) -> bool:
        """True when ``replica`` holds this write (see :mod:`crdtsync.testing.contains`)."""
        if not replica.has_doc(self.doc_id) and self.end > self.start:
            return False
        return contains_write(replica.doc(self.doc_id), self.update, self.client, self.start, self.end)


class SimStore:
    """A peer's durable storage: per document, the updates it persisted and the ids of the
    writes they contain. Survives :meth:`SimNetwork.crash`; :meth:`SimNetwork.restart` reloads it."""

    def __init__(self) -> None:
        self.updates: dict[str, list[bytes]] = {}
        self.write_ids: dict[str, set[int]] = {}

    def append(self, doc_id: str, update: bytes, write_ids: Iterable[int]) -> None:
        self.updates.setdefault(doc_id, []).append(update)
        self.write_ids.setdefault(doc_id, set()).update(write_ids)

    def doc_ids(self) -> list[str]:
        return list(self.updates)


class SimPeer:
    """One simulated peer: a Replica (``None`` while crashed), a store, a persistence buffer.

    Edit through :meth:`edit`, :meth:`mutate` and :meth:`settle_mutation` so the network
    records and sends the writes. ``replica`` is a fresh object after each restart.
    """

    def __init__(self, net: SimNetwork, name: str, index: int, persist_delay: float):
        self.net = net
        self.name = name
        self.index = index
        self.persist_delay = persist_delay
        self.incarnation = 0
        self.store = SimStore()
        self.replica: Replica | None = None
        self.known: dict[str, set[int]] = {}  # write ids this replica contains, per doc
        self._buffer: list[tuple[str, bytes, tuple[int, ...]]] = []
        self._ack_candidates: list[tuple[str, int]] = []  # (doc_id, write id)
        self._flush_timer: TimerHandle | None = None
        self._stop_listening: Callable[[], None] | None = None
        self._own_clock: dict[str, int] = {}
        self.mutations: dict[str, MutationResult] = {}
        self._boot()

    @property
    def up(self) -> bool:
        return self.replica is not None

    @property
    def client_id(self) -> int:
        """The Yjs client id of the current incarnation (a new one after each restart)."""
        return 1 + self.index * 100_000 + self.incarnation

    def _boot(self) -> None:
        replica = Replica(client_id=self.client_id)
        self._own_clock = {}
        self.known = {d: set(ids) for d, ids in self.store.write_ids.items()}
        for doc_id, updates in self.store.updates.items():
            for update in updates:
                replica.apply_update(doc_id, update, origin=RESTORE)
        self.replica = replica
        self._stop_listening = replica.on_update(self._on_update)

    def _require(self) -> Replica:
        if self.replica is None:
            raise SimulationError(f"peer {self.name} is crashed; restart it first")
        return self.replica

    # -- editing --------------------------------------------------------------------------
    def edit(self, op: EditOp, *, origin: Origin | None = None) -> bool:
        """Apply one edit op locally (recorded as a write and broadcast)."""
        replica = self._require()
        return op.apply(replica) if origin is None else op.apply(replica, origin=origin)

    def mutate(self, mutation: Mutation) -> MutationResult:
        """Apply an optimistic mutation; settle it later with :meth:`settle_mutation`."""
        result = apply_mutation(self._require(), mutation)
        self.mutations[mutation.id] = result
        return result

    def settle_mutation(self, mutation_id: str) -> bool:
        """Resolve a pending mutation: roll it back when it ``fails``. True when rolled back."""
        result = self.mutations.pop(mutation_id, None)
        if result is None or self.replica is None or not result.mutation.fails:
            return False
        self.net._log("rollback", self.name, detail=mutation_id)
        rollback_mutation(self.replica, result)
        return True

    # -- replica listener -------------------------------------------------------------------
    def _on_update(self, doc_id: str, update: bytes, origin: Origin) -> None:
        if origin.kind is OriginKind.RESTORE:
            return
        if origin.kind is OriginKind.REMOTE:
            self._persist(doc_id, update, ())
            return
        assert self.replica is not None
        end = decode_state_vector(self.replica.state_vector(doc_id)).get(self.client_id, 0)
        start = self._own_clock.get(doc_id, 0)
        self._own_clock[doc_id] = end
        record = self.net._record_write(self, doc_id, update, origin, start, end)
        self.known.setdefault(doc_id, set()).add(record.id)
        self._persist(doc_id, update, (record.id,))
        self.net._broadcast(self, MessageKind.UPDATE, doc_id, update, (record.id,))

    # -- persistence ------------------------------------------------------------------------
    def _persist(self, doc_id: str, update: bytes, write_ids: tuple[int, ...]) -> None:
        self._buffer.append((doc_id, update, write_ids))
        if self.persist_delay <= 0:
            self.flush()
        elif self._flush_timer is None:
            self._flush_timer = self.net.clock.call_later(self.persist_delay, self.flush)

    @property
    def has_unpersisted(self) -> bool:
        return bool(self._buffer) or bool(self._ack_candidates)

    def flush(self) -> None:
        """Persist the buffered updates now, then acknowledge what is durably held."""
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        if self.replica is None:
            return
        buffer, self._buffer = self._buffer, []
        for doc_id, update, ids in buffer:
            self.store.append(doc_id, update, ids)
            for wid in ids:
                self.net.writes[wid].persisted_by.add(self.name)
        if buffer:
            self.net._log("persist", self.name, detail=str(len(buffer)))
        candidates, self._ack_candidates = self._ack_candidates, []
        by_author: dict[str, list[int]] = {}
        for doc_id, wid in candidates:
            record = self.net.writes.get(wid)
            if record is None or wid not in self.known.get(doc_id, ()):
                continue  # not held here (pending on a missing dependency): acked when it is
            self.store.write_ids.setdefault(doc_id, set()).add(wid)
            record.persisted_by.add(self.name)
            if record.peer != self.name:
                by_author.setdefault(record.peer, []).append(wid)
        for author, wids in by_author.items():
            self.net._send(self, author, MessageKind.ACK, "", b"", tuple(sorted(wids)))

    # -- receiving --------------------------------------------------------------------------
    def _receive(self, msg: SimMessage) -> None:
        replica = self._require()
        if msg.kind is MessageKind.ACK:
            for wid in msg.write_ids:
                record = self.net.writes.get(wid)
                if record is not None and record.peer == self.name:
                    record.acked_by.add(msg.src)
            self.net._log("ack", msg.src, self.name, detail=",".join(map(str, msg.write_ids)))
            return
        if msg.kind is MessageKind.SYNC_STEP1:
            new_doc = not replica.has_doc(msg.doc_id)
            diff = replica.get_update(msg.doc_id, msg.payload)
            ids = tuple(sorted(self.known.get(msg.doc_id, ())))
            self.net._send(self, msg.src, MessageKind.SYNC_STEP2, msg.doc_id, diff, ids)
            if new_doc:  # we never asked for this document: ask now (once, so no ping-pong)
                sv = replica.state_vector(msg.doc_id)
                self.net._send(self, msg.src, MessageKind.SYNC_STEP1, msg.doc_id, sv, ())
            return
        # UPDATE or SYNC_STEP2: merge, then remember which writes we now may hold.
        replica.apply_update(msg.doc_id, msg.payload, origin=remote_origin(msg.src))
        known = self.known.setdefault(msg.doc_id, set())
        for wid in msg.write_ids:
            record = self.net.writes.get(wid)
            if record is not None and wid not in known and record.contained_in(replica):
                known.add(wid)
            self._ack_candidates.append((msg.doc_id, wid))
        if self.persist_delay <= 0 or not self._buffer:
            self.flush()
        elif self._flush_timer is None:
            self._flush_timer = self.net.clock.call_later(self.persist_delay, self.flush)

    def _sync_docs(self) -> list[str]:
        return self.replica.doc_ids() if self.replica is not None else []

    def _crash(self) -> None:
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        self._buffer.clear()
        self._ack_candidates.clear()
        self.mutations.clear()
        if self._stop_listening is not None:
            self._stop_listening()
            self._stop_listening = None
        if self.replica is not None:
            self.replica.close()
        self.replica = None

    def _restart(self) -> None:
        self.incarnation += 1
        self._boot()


class SimNetwork:
    """Peers in a full mesh with seeded faults on a :class:`~crdtsync.clock.FakeClock`.

    ``peers`` is a count (names ``p0``, ``p1``...) or a sequence of names. ``persist_delay``
    (seconds, default 0: write-through) is how long a peer buffers updates before storing them;
    a crash loses that buffer. ``max_steps`` bounds :meth:`run_until_quiet`.
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
    ):
        if not isinstance(seed, int):
            raise SimulationError(f"seed must be an int, got {seed!r}")
        if persist_delay < 0:
            raise SimulationError(f"persist_delay must be >= 0, got {persist_delay!r}")
        if max_steps < 1:
            raise SimulationError(f"max_steps must be >= 1, got {max_steps!r}")
        self.seed = seed
        self.rng = random.Random(seed)
        self.clock = clock if clock is not None else FakeClock()
        self.persist_delay = persist_delay
        self.max_steps = max_steps
        self.default_faults = faults
        self.link_faults: dict[tuple[str, str], LinkFaults] = {}
        self.down_links: set[tuple[str, str]] = set()
        self.peers: dict[str, SimPeer] = {}
        self.writes: dict[int, WriteRecord] = {}
        self.trace: list[TraceEvent] = []
        self._queue: list[tuple[float, int, SimMessage]] = []
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
        """Add a peer (named ``p<N>`` by default) connected to every other peer."""
        name = name if name is not None else f"p{len(self.peers)}"
        if name in self.peers:
            raise SimulationError(f"peer {name!r} already exists")
        delay = self.persist_delay if persist_delay is None else persist_delay
        peer = SimPeer(self, name, len(self.peers), delay)
        self.peers[name] = peer
        for other in self.peers.values():
            if other is not peer and other.up:
                self._handshake(peer, other)
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
        """Cut the link between ``a`` and ``b`` both ways; messages on it are lost."""
        self.peer(a)
        self.peer(b)
        if a == b:
            raise SimulationError("cannot partition a peer from itself")
        self.down_links.update({(a, b), (b, a)})
        self._log("partition", a, b)

    def isolate(self, name: str) -> None:
        """Cut every link of ``name`` (the peer goes offline but keeps editing)."""
        for other in self.peers:
            if other != name:
                self.partition(name, other)

    def heal(self, a: str, b: str) -> None:
        """Restore the link between ``a`` and ``b`` and run the sync handshake over it."""
        self.peer(a)
        self.peer(b)
        if (a, b) not in self.down_links:
            return
        self.down_links.discard((a, b))
        self.down_links.discard((b, a))
        self._log("heal", a, b)
        pa, pb = self.peers[a], self.peers[b]
        if pa.up and pb.up:
            self._handshake(pa, pb)

    def linked(self, a: str, b: str) -> bool:
        return (a, b) not in self.down_links

    async def heal_all(self, *, max_rounds: int = 5) -> None:
        """Let in-flight messages land, then make every link reliable, restart crashed peers,
        and run sync handshakes between every pair until all state vectors agree (at most
        ``max_rounds`` rounds; a message that was delayed past a handshake can make a second
        round necessary).

        After this, replicas should have converged: check with
        :func:`~crdtsync.testing.assertions.assert_converged`.
        """
        await self.run_until_quiet()
        self.default_faults = RELIABLE
        self.link_faults.clear()
        self.down_links.clear()
        self._log("heal", detail="all")
        for name, peer in self.peers.items():
            if not peer.up:
                self.restart(name)
        peers = list(self.peers.values())
        for _ in range(max_rounds):
            for i, a in enumerate(peers):
                for b in peers[i + 1 :]:
                    self._handshake(a, b)
            await self.run_until_quiet()
            for peer in peers:
                peer.flush()
            await self.run_until_quiet()
            if self._in_sync():
                return

    def _in_sync(self) -> bool:
        replicas = self.replicas()
        doc_ids = sorted({d for r in replicas for d in r.doc_ids()})
        for doc_id in doc_ids:
            svs = {tuple(sorted(decode_state_vector(r.state_vector(doc_id)).items())) for r in replicas}
            if len(svs) > 1:
                return False
        return True

    # -- crashes -----------------------------------------------------------------------------
    def crash(self, name: str) -> None:
        """Stop ``name`` at once: its replica and unpersisted updates are gone; messages to
        it are lost until :meth:`restart`."""
        peer = self.peer(name)
        if not peer.up:
            return
        peer._crash()
        self._log("crash", name)

    def restart(self, name: str) -> SimPeer:
        """Bring ``name`` back with a new replica (new client id) loaded from its store, and
        run the handshake with every reachable peer."""
        peer = self.peer(name)
        if peer.up:
            return peer
        peer._restart()
        self._log("restart", name, detail=str(peer.incarnation))
        for other in self.peers.values():
            if other is not peer and other.up and self.linked(name, other.name):
                self._handshake(peer, other)
        return peer

    # -- sending -----------------------------------------------------------------------------
    def _handshake(self, a: SimPeer, b: SimPeer) -> None:
        for src, dst in ((a, b), (b, a)):
            if src.replica is None:
                continue
            for doc_id in src._sync_docs():
                self._send(src, dst.name, MessageKind.SYNC_STEP1, doc_id, src.replica.state_vector(doc_id), ())

    def _broadcast(
        self, src: SimPeer, kind: MessageKind, doc_id: str, payload: bytes, ids: tuple[int, ...]
    ) -> None:
        for name in self.peers:
            if name != src.name:
                self._send(src, name, kind, doc_id, payload, ids)

    def _send(
        self, src: SimPeer, dst: str, kind: MessageKind, doc_id: str, payload: bytes, ids: tuple[int, ...]
    ) -> None:
        msg = SimMessage(kind, src.name, dst, doc_id, payload, ids, next(self._seq))
        detail = f"{kind.value}#{msg.seq}"
        if not self.linked(src.name, dst):
            self._log("lost_partition", src.name, dst, detail)
            return
        f = self.faults(src.name, dst)
        rng = self.rng
        if f.drop and rng.random() < f.drop:
            self._log("drop", src.name, dst, detail)
            return
        copies = 2 if f.duplicate and rng.random() < f.duplicate else 1
        if copies == 2:
            self._log("duplicate", src.name, dst, detail)
        self._log("send", src.name, dst, detail)
        for _ in range(copies):
            delay = f.min_delay if f.min_delay == f.max_delay else rng.uniform(f.min_delay, f.max_delay)
            if f.reorder and rng.random() < f.reorder:
                delay += rng.uniform(0.0, f.reorder_delay)
                self._log("reorder", src.name, dst, detail)
            when = round(self.clock.now() + delay, 4)
            heapq.heappush(self._queue, (when, next(self._seq), msg))

    # -- running -----------------------------------------------------------------------------
    @property
    def in_flight(self) -> int:
        return len(self._queue)

    def _deliver_due(self) -> int:
        n = 0
        now = self.clock.now()
        while self._queue and self._queue[0][0] <= now:
            _, _, msg = heapq.heappop(self._queue)
            n += 1
            detail = f"{msg.kind.value}#{msg.seq}"
            if not self.linked(msg.src, msg.dst):
                self._log("lost_partition", msg.src, msg.dst, detail)
                continue
            peer = self.peers[msg.dst]
            if not peer.up:
                self._log("lost_down", msg.src, msg.dst, detail)
                continue
            self.delivered += 1
            self._log("deliver", msg.src, msg.dst, detail)
            peer._receive(msg)
        return n

    def _next_time(self) -> float | None:
        times = [self._queue[0][0]] if self._queue else []
        timer = self.clock.next_timer_at()
        if timer is not None and any(p._flush_timer is not None for p in self.peers.values()):
            times.append(timer)
        return min(times) if times else None

    async def run_for(self, seconds: float) -> None:
        """Advance time by ``seconds``, delivering every message that falls due meanwhile."""
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

    async def run_until_quiet(self) -> None:
        """Deliver messages and fire persistence timers until nothing is in flight.

        Raises :class:`~crdtsync.errors.SimulationError` after ``max_steps`` rounds.
        """
        steps = 0
        while True:
            self._deliver_due()
            nxt = self._next_time()
            if nxt is None:
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
        """How many trace events of kind ``what`` happened (``"drop"``, ``"duplicate"``...)."""
        return sum(1 for e in self.trace if e.what == what)

    def close(self) -> None:
        """Close every replica (releases pycrdt observers)."""
        for peer in self.peers.values():
            peer._crash()
        self._queue.clear()
