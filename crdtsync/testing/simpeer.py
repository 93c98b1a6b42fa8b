"""One simulated peer: a Replica, its store, its ends of the links, and (on demand) a real
:class:`~crdtsync.client.QueryClient` over the same replica.

Build peers through :class:`~crdtsync.testing.network.SimNetwork`; edit through
:meth:`SimPeer.edit`, :meth:`SimPeer.mutate` / :meth:`SimPeer.settle_mutation` (the
inverse-write model) or :meth:`SimPeer.client_mutate` / :meth:`SimPeer.client_settle` (the
real mutation layer), so the network records and sends the writes.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from ..errors import ClientError, SimulationError
from ..origins import RESTORE, Origin, OriginKind, remote_origin
from ..protocol import native
from ..replica import Replica
from .clientops import optimistic_for
from .contains import decode_state_vector
from .ledger import SimStore
from .link import LinkSide
from .ops import EditOp, Mutation, MutationResult, apply_mutation, rollback_mutation

if TYPE_CHECKING:
    from ..client import QueryClient
    from ..mutations.mutation import Mutation as ClientMutation
    from .network import SimNetwork, _Timer

__all__ = ["SimPeer"]

# A buffered persistence entry: doc, update, ledger write ids, and (side, generation, seq,
# is_step2) when it came in a frame that wants an Ack.
_AckRef = tuple[LinkSide, int, int, bool]
_Entry = tuple[str, bytes, tuple[int, ...], "_AckRef | None"]


class SimPeer:
    """One simulated peer: a Replica (``None`` while crashed), a store, a persistence buffer.

    ``replica`` is a fresh object after each restart, and so is ``client``.
    """

    def __init__(self, net: SimNetwork, name: str, index: int, persist_delay: float):
        self.net = net
        self.name = name
        self.index = index
        self.persist_delay = persist_delay
        self.incarnation = 0
        self.store = SimStore()
        self.replica: Replica | None = None
        self.known: dict[str, set[int]] = {}  # ledger write ids this replica holds, per doc
        self._buffer: list[_Entry] = []
        self._flush_timer: _Timer | None = None
        self._stop_listening: Callable[[], None] | None = None
        self._own_clock: dict[str, int] = {}
        self.mutations: dict[str, MutationResult] = {}
        self._client: QueryClient | None = None
        self.client_mutations: dict[str, ClientMutation] = {}
        self._verdicts: dict[str, tuple[Mutation, asyncio.Future[Any]]] = {}
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
        """Apply one edit op locally (recorded as a write and sent on every open link)."""
        replica = self._require()
        return op.apply(replica) if origin is None else op.apply(replica, origin=origin)

    def mutate(self, mutation: Mutation) -> MutationResult:
        """Apply an optimistic mutation modelled as data; settle it later with
        :meth:`settle_mutation` (a failing one is undone by an inverse write). For the real
        mutation layer use :meth:`client_mutate`."""
        result = apply_mutation(self._require(), mutation)
        self.mutations[mutation.id] = result
        return result

    def settle_mutation(self, mutation_id: str) -> bool:
        """Resolve a pending :meth:`mutate`: roll it back when it ``fails``. True when rolled back."""
        result = self.mutations.pop(mutation_id, None)
        if result is None or self.replica is None or not result.mutation.fails:
            return False
        self.net._log("rollback", self.name, detail=mutation_id)
        rollback_mutation(self.replica, result)
        return True

    # -- the real client ----------------------------------------------------------------------
    @property
    def client(self) -> QueryClient:
        """A :class:`~crdtsync.client.QueryClient` whose replica is this peer's replica
        and whose clock is the network's (created on first use, a new one after a restart).
        Everything it writes is recorded and sent like any other local write."""
        if self._client is None:
            from ..client import QueryClient

            rng = random.Random(f"{self.net.seed}/{self.name}/{self.incarnation}")
            self._client = QueryClient(replica=self._require(), clock=self.net.clock, rng=rng)
        return self._client

    def client_mutate(self, mutation: Mutation) -> ClientMutation:
        """Run ``mutation`` through ``client.mutate``: its ops become the optimistic function
        (:func:`~crdtsync.testing.clientops.optimistic_for`), applied before this returns, and
        its ``mutation_fn`` waits for the simulated server's answer, given by
        :meth:`client_settle`. Returns the real mutation object."""
        client = self.client
        verdict: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._verdicts[mutation.id] = (mutation, verdict)

        async def server(variables: Any, ctx: Any) -> Any:
            return await verdict

        self.net._log("client_mutate", self.name, detail=mutation.id)
        m = client.mutate(mutation.id, mutation_fn=server, optimistic=optimistic_for(mutation.ops))
        self.client_mutations[mutation.id] = m
        return m

    async def client_settle(self, mutation_id: str) -> bool:
        """The server answers a :meth:`client_mutate` mutation: success, or (when ``fails``) a
        rejection with :class:`~crdtsync.errors.ClientError`, after which the mutation layer
        rolls back exactly its own changes. Waits until the mutation settled. Returns True
        when it was rolled back; False when it succeeded or is unknown to this incarnation (a
        crash abandons pending mutations: their optimistic edits stay where they got to)."""
        entry = self._verdicts.pop(mutation_id, None)
        m = self.client_mutations.pop(mutation_id, None)
        if entry is None or m is None or self.replica is None:
            return False
        mutation, verdict = entry
        if mutation.fails:
            verdict.set_exception(ClientError(f"simulated server rejects {mutation_id}", status=422))
        else:
            verdict.set_result({"id": mutation_id})
        self.net._log("client_settle", self.name, detail=f"{mutation_id}:{'fail' if mutation.fails else 'ok'}")
        await m.wait_settled()
        return mutation.fails

    # -- replica listener -------------------------------------------------------------------
    def _on_update(self, doc_id: str, update: bytes, origin: Origin) -> None:
        if origin.kind in (OriginKind.RESTORE, OriginKind.REMOTE):
            return  # restored: already stored; remote: the received bytes are stored instead
        assert self.replica is not None
        end = decode_state_vector(self.replica.state_vector(doc_id)).get(self.client_id, 0)
        start = self._own_clock.get(doc_id, 0)
        self._own_clock[doc_id] = end
        record = self.net._record_write(self, doc_id, update, origin, start, end)
        self.known.setdefault(doc_id, set()).add(record.id)
        self._persist((doc_id, update, (record.id,), None))
        for side in self.net._open_sides(self.name):
            seq = side.seq(doc_id, (record.id,))
            self.net._send(side, native.Update(doc_id, update, seq), (record.id,))

    # -- persistence ------------------------------------------------------------------------
    def _persist(self, entry: _Entry) -> None:
        self._buffer.append(entry)
        if self.persist_delay <= 0:
            self.flush()
        elif self._flush_timer is None:
            self._flush_timer = self.net._call_later(self.persist_delay, self.flush)

    @property
    def has_unpersisted(self) -> bool:
        return bool(self._buffer)

    def flush(self) -> None:
        """Persist the buffered updates now, then acknowledge, on each link, every write the
        other side sent that is now durable and integrated here (cumulative ``Ack`` frames).
        A stored frame whose writes yrs keeps pending waits for :meth:`_ack_integrated`."""
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        if self.replica is None or not self._buffer:
            return
        buffer, self._buffer = self._buffer, []
        touched: dict[tuple[int, str], LinkSide] = {}
        for doc_id, update, ids, ref in buffer:
            self.store.append(doc_id, update, ids)
            for wid in ids:
                self.net.writes[wid].persisted_by.add(self.name)
            if ref is not None:
                side, generation, seq, step2 = ref
                if side.generation == generation:
                    side.integrating.setdefault(doc_id, {})[seq] = (step2, ids)
                    touched[(id(side), doc_id)] = side
        self.net._log("persist", self.name, detail=str(len(buffer)))
        self._ack_integrated(touched.values())

    # -- acknowledgements -------------------------------------------------------------------
    def _missing(self, doc_id: str, write_ids: tuple[int, ...] | set[int]) -> set[int]:
        """The writes among ``write_ids`` this replica holds but has not integrated: yrs keeps
        an update pending while an update it depends on is missing, and the document's state
        vector does not cover it until then."""
        assert self.replica is not None
        sv: dict[int, int] | None = None
        out: set[int] = set()
        for wid in write_ids:
            record = self.net.writes.get(wid)
            if record is None or record.end <= record.start:
                continue  # nothing to integrate (a delete-only write)
            if sv is None:
                sv = decode_state_vector(self.replica.state_vector(doc_id))
            if sv.get(record.client, 0) < record.end:
                out.add(wid)
        return out

    def _ack_integrated(self, sides: Iterable[LinkSide], doc_id: str | None = None) -> None:
        """Move every stored frame of ``sides`` whose writes are now integrated (on ``doc_id``,
        or on every document) from ``integrating`` to ``durable``, then send each side the
        cumulative ``Ack`` that allows. Called after a flush and after every remote update."""
        for side in sides:
            if not (side.conn.is_open and self.net._is_current(side)):
                continue
            docs = [doc_id] if doc_id is not None else list(side.integrating)
            for doc in docs:
                waiting = side.integrating.get(doc)
                if not waiting:
                    continue
                for seq, (step2, ids) in list(waiting.items()):
                    if not self._missing(doc, ids):
                        del waiting[seq]
                        side.durable.setdefault(doc, {})[seq] = step2
                point = side.ack_point(doc)
                if point > side.acked.get(doc, 0):
                    side.acked[doc] = point
                    self.net._send(side, native.Ack(doc, point), ())

    # -- the protocol -----------------------------------------------------------------------
    def _send_step1(self, side: LinkSide, doc_id: str) -> None:
        assert self.replica is not None
        side.step1_sent.add(doc_id)
        self.net._send(side, native.SyncStep1(doc_id, self.replica.state_vector(doc_id)), ())

    def _on_open(self, side: LinkSide) -> None:
        """Our end of ``side`` is open: start the Yjs sync handshake for every document."""
        if self.replica is not None:
            for doc_id in self.replica.doc_ids():
                self._send_step1(side, doc_id)

    def _resync(self, side: LinkSide) -> None:
        """Send SyncStep1 for every document again (``heal_all``'s resync on an open link)."""
        self._on_open(side)

    def _on_message(self, side: LinkSide, msg: native.NativeMessage, write_ids: tuple[int, ...]) -> None:
        replica = self._require()
        if isinstance(msg, native.Hello):
            side.conn.accept(f"{side.other}->{self.name}#{side.generation}")
            self.net._opened(side)
        elif isinstance(msg, native.Welcome):
            self.net._opened(side)
        elif isinstance(msg, native.SyncStep1):
            try:
                diff = replica.get_update(msg.doc_id, msg.state_vector)
            except Exception as exc:  # a state vector pycrdt refuses: typed error, no crash
                self._bad_update(side, msg.doc_id, exc)
                return
            # Claim only the writes integrated here: a pending one travels in the diff too
            # (yrs encodes pending structs), but the other side cannot integrate it either.
            known = self.known.get(msg.doc_id, set())
            ids = tuple(sorted(known - self._missing(msg.doc_id, known)))
            self.net._send(side, native.SyncStep2(msg.doc_id, diff, side.seq(msg.doc_id, ids)), ids)
            if msg.doc_id not in side.step1_sent:  # a document we never offered: ask for it
                self._send_step1(side, msg.doc_id)
        elif isinstance(msg, (native.SyncStep2, native.Update)):
            try:
                replica.apply_update(msg.doc_id, msg.update, origin=remote_origin(side.other))
            except Exception as exc:
                self._bad_update(side, msg.doc_id, exc)
                return
            self.known.setdefault(msg.doc_id, set()).update(write_ids)
            ref = (side, side.generation, msg.seq, isinstance(msg, native.SyncStep2)) if msg.seq else None
            self._persist((msg.doc_id, msg.update, write_ids, ref))
            # This update may have integrated frames stored earlier, from any link.
            self._ack_integrated(self.net._open_sides(self.name), msg.doc_id)
        elif isinstance(msg, native.Ack):
            acked = side.take_acked(msg.doc_id, msg.seq)
            for wid in acked:
                record = self.net.writes.get(wid)
                if record is not None and record.peer == self.name:
                    record.acked_by.add(side.other)
            self.net._log("ack", side.other, self.name, detail=f"{msg.doc_id}<={msg.seq}")
        elif isinstance(msg, native.Error):
            self.net._log("remote_error", side.other, self.name, detail=f"{msg.code}:{msg.message}")
            if msg.fatal:
                self.net._close_link_of(side, reconnect=True)

    def _bad_update(self, side: LinkSide, doc_id: str, exc: Exception) -> None:
        self.net._log("bad_update", side.other, self.name, detail=f"{doc_id}:{type(exc).__name__}")
        self.net._send(side, native.Error(native.ErrorCode.BAD_UPDATE, str(exc)[:200], doc_id, False), ())

    # -- crash and restart --------------------------------------------------------------------
    def _crash(self) -> None:
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        self._buffer.clear()
        self.mutations.clear()
        self._verdicts.clear()
        self.client_mutations.clear()
        if self._stop_listening is not None:
            self._stop_listening()
            self._stop_listening = None
        if self._client is not None:
            # Stop its mutations without settling them (nothing more reaches the replica).
            self.net._spawn(self._client.close_mutations())
            self._client = None
        if self.replica is not None:
            self.replica.close()
        self.replica = None

    def _restart(self) -> None:
        self.incarnation += 1
        self._boot()
