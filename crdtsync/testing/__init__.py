"""crdtsync.testing: the public toolkit for conflict suites (see docs/testing.md).

What to import, and what to call next:

1. Generate work with hypothesis strategies (:mod:`crdtsync.testing.strategies`):
   :func:`json_values`, :func:`query_keys`, :func:`edit_ops`, :func:`mutation_scripts`,
   :func:`schedules` (N peers, edits, optimistic mutations, partitions, message faults, crashes).
2. Run it on a :class:`SimNetwork` (deterministic, seeded, on a :class:`FakeClock`; links
   carry real native-protocol frames between :class:`~crdtsync.protocol.Connection` objects):
   ``net = schedule.network()``, ``await net.run_schedule(schedule)``, then
   ``await net.heal_all()``. Or drive peers by hand: ``net.peer("p0").edit(SetValue(...))``,
   ``net.partition(a, b)``, ``net.crash(p)``, ``net.restart(p)``, ``await net.run_until_quiet()``.
   Real optimistic mutations: ``net.peer("p0").client_mutate(Mutation(...))`` then
   ``await net.peer("p0").client_settle(id)`` (the peer's :class:`~crdtsync.client.QueryClient`
   is ``net.peer("p0").client``).
3. Check: :func:`assert_converged` ``(net.named_replicas())`` (values and shared-type kinds;
   readable diff on failure, or :func:`differences` to inspect it) and
   :func:`assert_no_acknowledged_loss` ``(net)``; ``net.undetected_damage`` must be empty
   and ``net.protocol_errors`` lists the typed errors damaged frames raised. For a rule about intent, use
   :func:`concurrent_edit_vs_delete` or :func:`two_inserts_same_position` and assert on the
   outcome they return.
4. Without faults: :func:`connected_pair` gives two replicas synced in memory.

The pytest plugin (:mod:`crdtsync.testing.plugin`, loaded automatically) provides the
fixtures ``fake_clock``, ``replica``, ``replica_pair``, ``sim_network`` and ``relay`` (a real
relay on loopback with a temporary SQLite store) and the hypothesis
profiles ``ci``, ``dev`` and ``deep`` (``HYPOTHESIS_PROFILE=deep``).

Conformance suites for adapters: :func:`check_storage` ``(make_store)`` runs every
:class:`~crdtsync.storage.DocumentStore` check; :func:`check_transport`
``(make_pair, max_size=...)`` runs every :class:`~crdtsync.transport.Transport` check.

Importing this package needs hypothesis (the ``crdtsync[testing]`` extra).
"""

from __future__ import annotations

from ..clock import FakeClock
from .assertions import (
    Difference,
    EditVsDeleteOutcome,
    InsertOrderOutcome,
    assert_converged,
    assert_no_acknowledged_loss,
    concurrent_edit_vs_delete,
    differences,
    two_inserts_same_position,
)
from .clientops import optimistic_for
from .network import (
    LinkFaults,
    MessageKind,
    ProtocolErrorRecord,
    SimLink,
    SimMessage,
    SimNetwork,
    SimPeer,
    SimStore,
    TraceEvent,
    WriteRecord,
)
from .ops import (
    DeleteKey,
    EditOp,
    ListInsert,
    ListMove,
    ListRemove,
    Mutation,
    MutationResult,
    SetField,
    SetValue,
    TextDelete,
    TextInsert,
    apply_mutation,
    rollback_mutation,
)
from .peers import connect, connected_pair
from .schedule import Schedule
from .storage_suite import check_storage
from .strategies import edit_ops, json_values, mutation_scripts, query_keys, schedules
from .transport_suite import check_transport

__all__ = [
    "DeleteKey",
    "Difference",
    "EditOp",
    "EditVsDeleteOutcome",
    "FakeClock",
    "InsertOrderOutcome",
    "LinkFaults",
    "ListInsert",
    "ListMove",
    "ListRemove",
    "MessageKind",
    "Mutation",
    "MutationResult",
    "Schedule",
    "ProtocolErrorRecord",
    "SetField",
    "SetValue",
    "SimLink",
    "SimMessage",
    "SimNetwork",
    "SimPeer",
    "SimStore",
    "TextDelete",
    "TextInsert",
    "TraceEvent",
    "WriteRecord",
    "apply_mutation",
    "assert_converged",
    "assert_no_acknowledged_loss",
    "check_storage",
    "check_transport",
    "concurrent_edit_vs_delete",
    "connect",
    "connected_pair",
    "differences",
    "edit_ops",
    "json_values",
    "mutation_scripts",
    "optimistic_for",
    "query_keys",
    "rollback_mutation",
    "schedules",
    "two_inserts_same_position",
]
