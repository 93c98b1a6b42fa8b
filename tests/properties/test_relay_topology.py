"""The topology that ships, under faults: SyncProviders over real websockets through the real
relay (crdtsync.testing.relay_topology). Hypothesis generates edits (unique and shared keys),
connection drops, partitions, client crashes, relay crashes (kill -9: only what the store
committed survives) and waits for acks; after healing, every replica and the relay agree and
no acknowledged edit is lost."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crdtsync import Replica
from crdtsync.errors import NotConvergedError
from crdtsync.storage.merge import EMPTY_UPDATE
from crdtsync.testing.relay_topology import RelayTopology

CLIENTS = 3
DOCS = ("d0", "d1")

_client = st.integers(0, CLIENTS - 1)
STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("edit"), _client, st.sampled_from(DOCS)),
        st.tuples(st.just("edit_shared"), _client, st.sampled_from(DOCS), st.sampled_from(["x", "y"]),
                  st.integers(0, 9)),
        st.tuples(st.just("drop"), _client),
        st.tuples(st.just("partition"), _client),
        st.tuples(st.just("heal"), _client),
        st.tuples(st.just("wait_acked"), _client),
        st.tuples(st.just("crash_client"), _client),
        st.tuples(st.just("crash_relay")),
    ),
    min_size=1,
    max_size=25,
)


async def run_steps(steps: list[tuple[Any, ...]]) -> RelayTopology:
    async with RelayTopology(clients=CLIENTS, docs=DOCS) as topo:
        for step in steps:
            kind = step[0]
            if kind == "edit":
                topo.edit(step[1], step[2])
            elif kind == "edit_shared":
                topo.edit(step[1], step[2], shared_key=step[3], value=step[4])
            elif kind == "drop":
                await topo.drop(step[1])
            elif kind == "partition":
                await topo.partition(step[1])
            elif kind == "heal":
                await topo.heal(step[1])
            elif kind == "wait_acked":
                if not topo.clients[step[1]].partitioned:
                    await topo.wait_acked(step[1])
            elif kind == "crash_client":
                await topo.crash_client(step[1])
            elif kind == "crash_relay":
                await topo.crash_relay()
            topo.note_acks()
        await topo.settle()
        topo.check()
        return topo


# CI's profile runs 2,000 schedules (about a minute here), the deep profile 20,000.
EXAMPLES = {"ci": 2000, "deep": 20_000}.get(settings.get_current_profile_name(), 200)


@pytest.mark.timeout(900)
@settings(max_examples=EXAMPLES, deadline=None)
@given(steps=STEPS)
async def test_relay_topology_converges_and_keeps_every_acknowledged_edit(steps: list[tuple[Any, ...]]) -> None:
    await run_steps(steps)


async def test_acknowledged_edits_survive_a_relay_crash() -> None:
    topo = await run_steps([("edit", 0, "d0"), ("wait_acked", 0), ("crash_relay",), ("edit", 1, "d0")])
    assert len(topo.acked) == 2


async def test_the_check_fails_when_the_resync_after_reconnect_is_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    """The property has teeth: if the client's answer to the relay's SyncStep1 after a
    reconnect carried nothing (no resync), an edit made while partitioned never reaches the
    others, and the check fails."""
    monkeypatch.setattr(Replica, "get_update", lambda self, doc_id, state_vector=None: EMPTY_UPDATE)
    with pytest.raises(NotConvergedError):
        await run_steps([("partition", 0), ("edit", 0, "d0"), ("heal", 0)])
