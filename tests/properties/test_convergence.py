"""The project's own large conflict properties, run through the public toolkit.

3 to 5 peers make random edits (maps, entity fields, lists, text) and optimistic mutations
that sometimes fail, while the network drops, duplicates, delays, reorders, corrupts and
truncates native-protocol frames, partitions links and crashes peers that restart from their
stores. Mutations run either through the real mutation layer (each peer's QueryClient, rolled
back by the layer) or as the inverse-write model. After ``heal_all`` every replica must hold
the same values, no acknowledged write may be missing, and every damaged frame must have been
rejected with a typed protocol error. test_client_mutations.py checks exact end values.

Sizes follow the hypothesis profile: ``ci`` / ``dev`` are quick, ``HYPOTHESIS_PROFILE=deep``
runs many more examples.
"""

from __future__ import annotations

import asyncio

from hypothesis import given
from hypothesis import strategies as st

from crdtsync.testing import (
    FakeClock,
    Schedule,
    assert_converged,
    assert_no_acknowledged_loss,
    edit_ops,
    schedules,
)

DOCS = ("shop", "notes")
OPS = edit_ops(doc_ids=DOCS, keys=("a", "b", "c"))


async def _run(schedule: Schedule) -> None:
    net = schedule.network(FakeClock())
    try:
        await net.run_schedule(schedule)
        await net.heal_all()
        assert_converged(net.named_replicas())
        assert_no_acknowledged_loss(net)
        assert net.undetected_damage == []
    finally:
        await net.aclose()


@given(schedules(peers=3, ops=OPS, min_steps=8, max_steps=40))
def test_three_peers_converge_with_every_fault(schedule: Schedule) -> None:
    asyncio.run(_run(schedule))


@given(st.integers(4, 5).flatmap(lambda n: schedules(peers=n, ops=OPS, min_steps=10, max_steps=60)))
def test_four_or_five_peers_converge_with_every_fault(schedule: Schedule) -> None:
    asyncio.run(_run(schedule))


@given(
    st.integers(3, 5).flatmap(
        lambda n: schedules(peers=n, ops=OPS, min_steps=10, max_steps=50, mutation_layer="client")
    )
)
def test_real_client_mutations_converge_with_every_fault(schedule: Schedule) -> None:
    asyncio.run(_run(schedule))


@given(schedules(peers=3, ops=OPS, min_steps=8, max_steps=40, faults=("crash",), persist_delays=(0.02,)))
def test_crashes_with_write_behind_lose_nothing_acknowledged(schedule: Schedule) -> None:
    asyncio.run(_run(schedule))


@given(
    schedules(
        peers=3, ops=OPS, min_steps=8, max_steps=40, faults=("partition",), mutation_layer="client"
    )
)
def test_offline_periods_and_failing_client_mutations_converge(schedule: Schedule) -> None:
    asyncio.run(_run(schedule))


@given(schedules(peers=3, ops=OPS, min_steps=8, max_steps=40, faults=("corrupt", "truncate", "reorder")))
def test_damaged_frames_are_rejected_and_peers_reconnect(schedule: Schedule) -> None:
    asyncio.run(_run(schedule))
