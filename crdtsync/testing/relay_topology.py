""":class:`RelayTopology`: the topology that ships, under faults, for property tests.

N clients, each a :class:`~crdtsync.replica.Replica` kept in sync by the real
:class:`~crdtsync.sync.SyncProvider`, talk over real websockets on loopback to one real
:class:`~crdtsync.relay.Relay` (rooms, native endpoint, acks after the store committed). The
faults are the ones a deployment sees on an ordered, reliable transport:

- :meth:`drop` a client's connection at any point (its provider reconnects and resyncs);
- :meth:`partition` a client (its connects fail) and :meth:`heal` it;
- :meth:`crash_client`: the client's process dies; its replica is gone (edits it had not had
  acknowledged are lost with it, as they would be without a local persister) and a new
  incarnation starts empty and syncs from the relay;
- :meth:`crash_relay`: kill -9 of the relay. What survives is exactly what its store had
  committed at that instant (taken as a snapshot), and a new relay starts on it; everything
  else the old relay held in memory is gone.

Frame-level duplication and reordering cannot happen inside one websocket (TCP), so they are
not modelled here; :class:`~crdtsync.testing.network.SimNetwork` covers them between peers.

Edits go through :meth:`edit`, which records them. A client's edits count as *acknowledged*
once its provider reports every local change acked (:meth:`note_acks`, called after every
step by :meth:`step`). :meth:`settle` heals everything and waits until every client is synced
and acked; then :meth:`check` asserts that every replica and the relay's rooms agree and that
no acknowledged edit is missing (edits use unique keys; see :meth:`edit`).

Use it as ``async with RelayTopology(clients=3) as topo: ...``; waits are on events with
timeouts, never fixed sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from dataclasses import dataclass, field
from typing import Any

from ..errors import NotConvergedError, SimulationError, TransportError
from ..protocol.close_codes import CloseCode
from ..relay import NATIVE_PATH, Relay, RelayConfig
from ..replica import Replica
from ..storage.memory import MemoryStore
from ..sync import Backoff, SyncProvider
from ..transport.base import Transport
from ..transport.websocket import connect_websocket
from .assertions import assert_converged
from .contains import decode_state_vector

__all__ = ["ClientNode", "RelayTopology"]

SETTLE_TIMEOUT = 30.0


@dataclass(eq=False)
class ClientNode:
    """One client: its current incarnation's replica and provider, and what it wrote."""

    name: str
    replica: Replica
    provider: SyncProvider
    partitioned: bool = False
    incarnation: int = 0
    transports: list[Transport] = field(default_factory=list)  # its connections, to cut them
    #: (doc, key, value) of every edit of the current incarnation not yet acknowledged
    unacked: list[tuple[str, str, Any]] = field(default_factory=list)


class RelayTopology:
    """``clients`` clients and one relay; ``docs`` are the document ids every client syncs."""

    def __init__(self, *, clients: int = 3, docs: tuple[str, ...] = ("d0", "d1"),
                 config: RelayConfig | None = None):
        if clients < 1 or not docs:
            raise ValueError("need at least one client and one document")
        self.docs = docs
        self.config = config or RelayConfig(port=0)
        self.store = MemoryStore()
        self.relay: Relay | None = None
        self.clients: list[ClientNode] = []
        self._n_clients = clients
        self._keys = itertools.count(1)
        #: every acknowledged edit: (doc, unique key) -> value
        self.acked: dict[tuple[str, str], Any] = {}
        self.log: list[str] = []

    # -- lifecycle --------------------------------------------------------------------------
    async def __aenter__(self) -> RelayTopology:
        await self._start_relay()
        for i in range(self._n_clients):
            self.clients.append(await self._start_client(f"c{i}", 0))
        return self

    async def __aexit__(self, *exc: object) -> None:
        for c in self.clients:
            await c.provider.close()
        if self.relay is not None:
            await self.relay.stop()

    async def _start_relay(self) -> None:
        relay = Relay(self.config, self.store)
        await relay.start()
        self.relay = relay

    async def _start_client(self, name: str, incarnation: int) -> ClientNode:
        replica = Replica()
        node: ClientNode

        async def connect() -> Transport:
            if node.partitioned or self.relay is None:
                raise TransportError(f"{name} is partitioned from the relay")
            t = await connect_websocket(self.relay.url + NATIVE_PATH)
            node.transports.append(t)
            return t

        # a connect that lands in a dying relay's accept queue is cut short by the handshake
        # timeout (the provider retries); kept short so a crash costs the test little time
        provider = SyncProvider(replica, connect, backoff=Backoff(initial=0.005, maximum=0.05, jitter=0.0),
                                handshake_timeout=1.0, name=f"{name}.{incarnation}")
        node = ClientNode(name, replica, provider, incarnation=incarnation)
        for d in self.docs:
            provider.subscribe(d)
        await provider.start()
        return node

    # -- steps ------------------------------------------------------------------------------
    def edit(self, client: int, doc: str, *, shared_key: str | None = None, value: Any = None) -> str:
        """Write on ``client``: a fresh unique key (checked for loss), or ``shared_key`` (a
        key every client may overwrite: checked for convergence only). Returns the key."""
        node = self.clients[client]
        unique = shared_key is None
        key = f"{node.name}.{node.incarnation}.{next(self._keys)}" if shared_key is None else shared_key
        value = key if value is None else value
        node.replica.write((doc, key), value)
        if unique:
            node.unacked.append((doc, key, value))
        self.log.append(f"edit {node.name} {doc}/{key}")
        return key

    async def drop(self, client: int) -> None:
        """Cut the client's current connection (it reconnects by itself)."""
        node = self.clients[client]
        self.log.append(f"drop {node.name}")
        for t in node.transports:
            with contextlib.suppress(Exception):
                await t.close(CloseCode.ABNORMAL, "dropped by the topology")
        node.transports.clear()

    async def partition(self, client: int) -> None:
        node = self.clients[client]
        self.log.append(f"partition {node.name}")
        node.partitioned = True
        await self.drop(client)

    async def heal(self, client: int) -> None:
        node = self.clients[client]
        self.log.append(f"heal {node.name}")
        node.partitioned = False
        await node.provider.reconnect()

    async def crash_client(self, client: int) -> None:
        """The client's process dies: unacknowledged edits go with it; a new one starts."""
        node = self.clients[client]
        self.log.append(f"crash {node.name}")
        self.note_acks()
        await node.provider.close()  # its replica is dropped with everything unacknowledged
        fresh = await self._start_client(node.name, node.incarnation + 1)
        fresh.partitioned = node.partitioned
        self.clients[client] = fresh

    async def crash_relay(self) -> None:
        """kill -9 of the relay: a new relay starts on what the store had committed."""
        self.log.append("crash relay")
        self.note_acks()
        old, old_store = self.relay, self.store
        survived = MemoryStore()
        for doc_id in self.docs:  # MemoryStore.load never awaits: this is one instant
            state = await old_store.load(doc_id)
            if state is not None:
                await survived.append(doc_id, state)
        self.relay, self.store = None, survived
        if old is not None:
            await old.stop()  # whatever it flushes now lands in the old store, not the survivor
        await self._start_relay()
        for node in self.clients:
            node.transports.clear()
            if not node.partitioned:
                await node.provider.reconnect()

    def note_acks(self) -> None:
        """Count as acknowledged every edit of a client whose provider has nothing unacked."""
        for node in self.clients:
            if node.unacked and node.provider.is_acked():
                for doc, key, value in node.unacked:
                    self.acked[(doc, key)] = value
                node.unacked.clear()

    async def wait_acked(self, client: int, timeout: float = SETTLE_TIMEOUT) -> None:
        """Wait until the client has every edit acknowledged (it must be able to connect)."""
        node = self.clients[client]
        if node.partitioned:
            raise SimulationError(f"{node.name} is partitioned: it cannot be acknowledged")
        await asyncio.wait_for(node.provider.wait_acked(), timeout)
        self.note_acks()

    # -- the end ----------------------------------------------------------------------------
    async def settle(self, timeout: float = SETTLE_TIMEOUT) -> None:
        """Heal every partition, then wait until every client is synced and acked."""
        for i, node in enumerate(self.clients):
            if node.partitioned:
                await self.heal(i)
        changed = asyncio.Event()
        stops = [node.replica.on_update(lambda *_: changed.set()) for node in self.clients]

        def behind() -> bool:
            """Some client lacks something the relay's rooms hold."""
            relay = self.relay
            for d in self.docs:
                room = relay.rooms.get(d) if relay is not None else None
                if room is None:
                    continue
                held = decode_state_vector(room.state_vector())
                for node in self.clients:
                    has = decode_state_vector(node.replica.state_vector(d))
                    if any(has.get(cid, 0) < clock for cid, clock in held.items()):
                        return True
            return False

        async def all_done() -> None:
            for node in self.clients:
                for d in self.docs:
                    await node.provider.wait_synced(d)
                await node.provider.wait_acked()
            # everyone acked: the relay holds all of it; wait until every client holds the relay's
            while behind():
                await changed.wait()
                changed.clear()

        try:
            await asyncio.wait_for(all_done(), timeout)
        finally:
            for stop in stops:
                stop()
        self.note_acks()

    def check(self) -> None:
        """Every replica and the relay agree; no acknowledged edit is missing."""
        replicas = {f"{n.name}.{n.incarnation}": n.replica for n in self.clients}
        relay = self.relay
        if relay is not None:
            mirror = Replica()
            for d in self.docs:
                room = relay.rooms.get(d)
                if room is not None:
                    mirror.apply_update(d, bytes(room.doc.get_update()))
            replicas["relay"] = mirror
        assert_converged(replicas, docs=self.docs)
        some = self.clients[0].replica
        lost = [(d, k) for (d, k), v in self.acked.items() if some.read((d, k)) != v]
        if lost:
            raise NotConvergedError(f"{len(lost)} acknowledged edit(s) lost: {lost[:10]}\nlog: {self.log}")
