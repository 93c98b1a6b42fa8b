"""Schedules: what N peers do, step by step, while the network misbehaves.

A :class:`Schedule` is data (frozen dataclasses), so hypothesis can shrink it and a failing
example prints readably. Run one with ``await net.run_schedule(schedule)`` on a
:class:`~crdtsync.testing.network.SimNetwork` built with ``schedule.network(clock)``, then
``await net.heal_all()`` and check with the assertions. Generate them with
:func:`crdtsync.testing.strategies.schedules`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

from .network import LinkFaults
from .ops import EditOp, Mutation

if TYPE_CHECKING:
    from ..clock import FakeClock
    from .network import SimNetwork

__all__ = [
    "Advance",
    "ClientMutate",
    "ClientSettle",
    "Crash",
    "Edit",
    "Heal",
    "Mutate",
    "Partition",
    "Restart",
    "Schedule",
    "SetFaults",
    "Settle",
    "Step",
]


@dataclass(frozen=True, slots=True)
class Edit:
    """``peer`` applies ``op`` (skipped while the peer is crashed)."""

    peer: str
    op: EditOp

    async def run(self, net: SimNetwork) -> None:
        p = net.peer(self.peer)
        if p.up:
            p.edit(self.op)
        else:
            net._log("skip_edit", self.peer)


@dataclass(frozen=True, slots=True)
class Mutate:
    """``peer`` applies an optimistic mutation; a later :class:`Settle` resolves it."""

    peer: str
    mutation: Mutation

    async def run(self, net: SimNetwork) -> None:
        p = net.peer(self.peer)
        if p.up:
            p.mutate(self.mutation)
        else:
            net._log("skip_edit", self.peer)


@dataclass(frozen=True, slots=True)
class Settle:
    """The server answers ``peer``'s mutation: a failing one is rolled back."""

    peer: str
    mutation_id: str

    async def run(self, net: SimNetwork) -> None:
        net.peer(self.peer).settle_mutation(self.mutation_id)


@dataclass(frozen=True, slots=True)
class ClientMutate:
    """``peer`` runs ``mutation`` through its real QueryClient (``client.mutate`` with an
    optimistic function made of the ops); a later :class:`ClientSettle` gives the server's
    answer. Skipped while the peer is crashed."""

    peer: str
    mutation: Mutation

    async def run(self, net: SimNetwork) -> None:
        p = net.peer(self.peer)
        if p.up:
            p.client_mutate(self.mutation)
        else:
            net._log("skip_edit", self.peer)


@dataclass(frozen=True, slots=True)
class ClientSettle:
    """The simulated server answers ``peer``'s client mutation; a failing one is rolled back by
    the mutation layer (a mutation its peer lost in a crash is abandoned)."""

    peer: str
    mutation_id: str

    async def run(self, net: SimNetwork) -> None:
        await net.peer(self.peer).client_settle(self.mutation_id)


@dataclass(frozen=True, slots=True)
class Partition:
    a: str
    b: str

    async def run(self, net: SimNetwork) -> None:
        net.partition(self.a, self.b)


@dataclass(frozen=True, slots=True)
class Heal:
    a: str
    b: str

    async def run(self, net: SimNetwork) -> None:
        net.heal(self.a, self.b)


@dataclass(frozen=True, slots=True)
class Crash:
    peer: str

    async def run(self, net: SimNetwork) -> None:
        net.crash(self.peer)


@dataclass(frozen=True, slots=True)
class Restart:
    peer: str

    async def run(self, net: SimNetwork) -> None:
        net.restart(self.peer)


@dataclass(frozen=True, slots=True)
class Advance:
    """Let ``seconds`` of simulated time pass, delivering what falls due."""

    seconds: float

    async def run(self, net: SimNetwork) -> None:
        await net.run_for(self.seconds)


@dataclass(frozen=True, slots=True)
class SetFaults:
    """Change the faults on every link."""

    faults: LinkFaults

    async def run(self, net: SimNetwork) -> None:
        net.set_faults(self.faults)


Step: TypeAlias = (
    "Edit | Mutate | Settle | ClientMutate | ClientSettle | Partition | Heal | Crash | Restart | Advance | SetFaults"
)


@dataclass(frozen=True, slots=True)
class Schedule:
    """``peers`` peer names, the network ``seed`` and ``persist_delay``, and the steps."""

    peers: tuple[str, ...]
    seed: int
    persist_delay: float
    steps: tuple[Step, ...]

    def network(self, clock: FakeClock | None = None) -> SimNetwork:
        """A fresh :class:`~crdtsync.testing.network.SimNetwork` set up for this schedule."""
        from .network import SimNetwork

        return SimNetwork(seed=self.seed, clock=clock, peers=self.peers, persist_delay=self.persist_delay)
