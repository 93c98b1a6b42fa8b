"""Real optimistic mutations on 3 to 5 peers under faults: a failed mutation's edit is gone
everywhere, concurrent edits to other fields survive, nothing acknowledged is lost.

Every peer owns one field of each entity (field ``p1`` of ``todos/e0`` is written only by
``p1``), so the expected end state is exact: per field, the owner's last write that did not
fail (plain edits, mutations that succeeded, and mutations abandoned by a crash, whose
optimistic edit was already stored and that nobody rolls back). Mutations run through each
peer's real QueryClient (``SimPeer.client_mutate``): a rejection is undone by the mutation
layer's own rollback. Other fields of the same entity change concurrently on other peers,
and random edits of every kind hit another document, while links drop, duplicate, reorder,
delay, corrupt and truncate frames, partitions come and go, and peers crash and restart.
Writes are stored at once (``persist_delay=0``), so the model needs no durability guesswork;
write-behind crashes are covered by test_convergence.py.
"""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import event, given
from hypothesis import strategies as st

from crdtsync.testing import (
    FakeClock,
    LinkFaults,
    Mutation,
    Schedule,
    SetField,
    SetValue,
    assert_converged,
    assert_no_acknowledged_loss,
    edit_ops,
)
from crdtsync.testing.schedule import (
    Advance,
    ClientMutate,
    ClientSettle,
    Crash,
    Edit,
    Heal,
    Partition,
    Restart,
    SetFaults,
    Step,
)

DOC = "todos"
ENTITIES = ("e0", "e1")
INITIAL = 0
NOISE = edit_ops(doc_ids=("notes",), keys=("a", "b"))

faults = st.builds(
    LinkFaults,
    drop=st.sampled_from((0.0, 0.1, 0.3)),
    duplicate=st.sampled_from((0.0, 0.2)),
    reorder=st.sampled_from((0.0, 0.3)),
    max_delay=st.sampled_from((0.001, 0.02)),
    corrupt=st.sampled_from((0.0, 0.05)),
    truncate=st.sampled_from((0.0, 0.05)),
)


@st.composite
def owned_field_schedules(draw: st.DrawFn, *, peers: int) -> Schedule:
    names = tuple(f"p{i}" for i in range(peers))
    peer = st.sampled_from(names)
    entity = st.sampled_from(ENTITIES)
    action = st.one_of(
        st.tuples(st.just("edit"), peer, entity),
        st.tuples(st.just("mutate"), peer, st.lists(entity, min_size=1, max_size=2, unique=True), st.booleans()),
        st.tuples(st.just("mutate"), peer, st.lists(entity, min_size=1, max_size=2, unique=True), st.just(True)),
        st.tuples(st.just("settle"), peer, st.integers(0, 3)),
        st.tuples(st.just("settle"), peer, st.integers(0, 3)),
        st.tuples(st.just("noise"), peer, NOISE),
        st.tuples(st.just("advance"), st.sampled_from((0.001, 0.01, 0.05))),
        st.tuples(st.just("faults"), faults),
        st.tuples(st.just("partition"), st.lists(peer, min_size=2, max_size=2, unique=True)),
        st.tuples(st.just("heal"), st.lists(peer, min_size=2, max_size=2, unique=True)),
        st.tuples(st.just("crash"), peer),
        st.tuples(st.just("restart"), peer),
    )
    raw = draw(st.lists(action, min_size=8, max_size=40))
    steps: list[Step] = []
    pending: dict[str, list[str]] = {}
    for n, item in enumerate(raw):
        value = 1000 + n  # unique per step: a value names the write that made it
        kind = item[0]
        if kind == "edit":
            steps.append(Edit(item[1], SetField(DOC, item[2], item[1], value)))
        elif kind == "mutate":
            mid = f"m{n}"
            ops = tuple(SetField(DOC, e, item[1], value) for e in item[2])
            steps.append(ClientMutate(item[1], Mutation(mid, ops, item[3])))
            pending.setdefault(item[1], []).append(mid)
        elif kind == "settle":
            queue = pending.get(item[1], [])
            if queue:  # answers may come out of order
                steps.append(ClientSettle(item[1], queue.pop(item[2] % len(queue))))
        elif kind == "noise":
            steps.append(Edit(item[1], item[2]))
        elif kind == "advance":
            steps.append(Advance(item[1]))
        elif kind == "faults":
            steps.append(SetFaults(item[1]))
        elif kind == "partition":
            steps.append(Partition(*item[1]))
        elif kind == "heal":
            steps.append(Heal(*item[1]))
        elif kind == "crash":
            steps.append(Crash(item[1]))
        elif kind == "restart":
            steps.append(Restart(item[1]))
    for p, queue in pending.items():
        steps.extend(ClientSettle(p, mid) for mid in queue)
    return Schedule(names, draw(st.integers(0, 2**32 - 1)), 0.0, tuple(steps))


def expected_fields(schedule: Schedule) -> tuple[dict[tuple[str, str], int], set[int]]:
    """The model: per (entity, owner field), the owner's last write that did not fail; and the
    values of the failed mutations."""
    up = dict.fromkeys(schedule.peers, True)
    incarnation = dict.fromkeys(schedule.peers, 0)
    pending: dict[str, int] = {}  # mutation id -> incarnation that made it
    failing: dict[str, bool] = {}
    writes: list[tuple[str, tuple[str, str], int]] = []  # (writer tag, slot, value)
    failed_values: set[int] = set()
    for step in schedule.steps:
        if isinstance(step, Edit) and isinstance(step.op, SetField) and step.op.doc_id == DOC and up[step.peer]:
            writes.append(("edit", (step.op.key, step.op.field), step.op.value))
        elif isinstance(step, ClientMutate) and up[step.peer]:
            pending[step.mutation.id] = incarnation[step.peer]
            failing[step.mutation.id] = step.mutation.fails
            for op in step.mutation.ops:
                assert isinstance(op, SetField)
                writes.append((step.mutation.id, (op.key, op.field), op.value))
        elif isinstance(step, ClientSettle):
            made_by = pending.pop(step.mutation_id, None)
            live = made_by is not None and up[step.peer] and made_by == incarnation[step.peer]
            if live and failing[step.mutation_id]:  # rolled back; otherwise kept (ok or abandoned)
                failed_values.update(v for tag, _, v in writes if tag == step.mutation_id)
                writes = [w for w in writes if w[0] != step.mutation_id]
        elif isinstance(step, Crash):
            up[step.peer] = False
        elif isinstance(step, Restart) and not up[step.peer]:
            up[step.peer] = True
            incarnation[step.peer] += 1
    expected = {(e, p): INITIAL for e in ENTITIES for p in schedule.peers}
    for _, slot, value in writes:
        expected[slot] = value
    return expected, failed_values


async def run(schedule: Schedule) -> None:
    net = schedule.network(FakeClock())
    try:
        seed = {p: INITIAL for p in schedule.peers}
        for e in ENTITIES:  # every entity exists everywhere before the run (no concurrent creation)
            net.peer("p0").edit(SetValue(DOC, e, seed))
        await net.run_until_quiet()
        await net.run_schedule(schedule)
        await net.heal_all()
        replicas = net.named_replicas()
        assert_converged(replicas)
        assert_no_acknowledged_loss(net)
        assert net.undetected_damage == []
        expected, failed = expected_fields(schedule)
        for name, replica in replicas.items():
            got = {(e, p): replica.read_path(DOC, (e, p)) for e in ENTITIES for p in schedule.peers}
            assert got == expected, f"{name}: {got} != {expected}"
            shown: set[Any] = set(got.values())
            assert not shown & failed, f"{name} still shows failed mutation values {shown & failed}"
        event(f"failed mutations rolled back: {'yes' if failed else 'no'}")
        event(f"protocol errors: {'yes' if net.protocol_errors else 'no'}")
    finally:
        await net.aclose()


@given(owned_field_schedules(peers=3))
def test_three_peers_failed_mutations_vanish_and_other_fields_survive(schedule: Schedule) -> None:
    asyncio.run(run(schedule))


@given(st.integers(4, 5).flatmap(lambda n: owned_field_schedules(peers=n)))
def test_four_or_five_peers_failed_mutations_vanish_and_other_fields_survive(schedule: Schedule) -> None:
    asyncio.run(run(schedule))
