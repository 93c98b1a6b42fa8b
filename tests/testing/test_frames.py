"""The simulated network drives the real protocol core: links carry encoded native frames,
damaged frames surface as typed protocol errors (never a crash, never accepted), handshakes
that fail are retried, and acknowledgements travel as Ack frames."""

from __future__ import annotations

import pytest

from crdtsync.errors import FrameError, MessageTooLargeError, ProtocolError, SimulationError
from crdtsync.protocol import State, native
from crdtsync.protocol.state import UnexpectedMessageError
from crdtsync.testing import (
    FakeClock,
    LinkFaults,
    ListInsert,
    Mutation,
    SetField,
    SetValue,
    SimNetwork,
    assert_converged,
    assert_no_acknowledged_loss,
)
from crdtsync.testing.faults import corrupt_frame, truncate_frame
from crdtsync.testing.schedule import Crash, Mutate, Schedule, SetFaults, Settle


async def test_links_carry_real_native_frames() -> None:
    net = SimNetwork(seed=0, peers=2)
    await net.run_until_quiet()
    assert net.link("p0", "p1").open
    assert all(s.conn.state is State.OPEN for s in net.link("p0", "p1").sides.values())
    net.peer("p0").edit(SetValue("d", "x", 1))
    (record,) = net.writes.values()
    (msg,) = net.frames_in_flight()
    decoded = native.decode(msg.frame)
    assert decoded == native.Update("d", record.update, 1)
    assert msg.kind == "update" and (msg.src, msg.dst) == ("p0", "p1")
    await net.run_until_quiet()
    assert net.peer("p1").replica is not None and net.peer("p1").replica.read_path("d", ("x",)) == 1
    kinds = [e.detail.split("#")[0] for e in net.trace if e.what == "deliver"]
    assert kinds[:2] == ["hello", "welcome"]
    assert "update" in kinds and "ack" in kinds
    assert record.acked_by == {"p1"}


@pytest.mark.parametrize("seed", range(20))
def test_damage_functions_always_produce_undecodable_frames(seed: int) -> None:
    import random

    rng = random.Random(seed)
    for msg in (native.Update("doc", b"\x01\x02" * seed, 3), native.SyncStep1("d", b"\x00"), native.Ack("d", 9)):
        frame = native.encode(msg)
        for damaged in (corrupt_frame(frame, rng), truncate_frame(frame, rng)):
            with pytest.raises(FrameError):
                native.decode(damaged)


@pytest.mark.parametrize("fault", ["corrupt", "truncate"])
async def test_damaged_frames_raise_typed_errors_then_the_link_reconnects(fault: str) -> None:
    net = SimNetwork(seed=3, peers=3)
    await net.run_until_quiet()
    net.set_faults(LinkFaults(**{fault: 0.5}), src="p0", dst="p1")  # type: ignore[arg-type]
    for i in range(20):
        net.peer(f"p{i % 3}").edit(SetValue("d", f"k{i % 5}", i))
        net.peer("p0").edit(ListInsert("d", "l", i, i))
        await net.run_for(0.01)
    assert net.count(fault) > 0
    assert net.protocol_errors, "a damaged frame was never rejected"
    assert all(isinstance(r.error, ProtocolError) for r in net.protocol_errors)
    assert {r.damage for r in net.protocol_errors} == {fault}
    assert all(isinstance(r.error, FrameError) and r.peer == "p1" for r in net.protocol_errors)
    assert net.undetected_damage == []
    assert net.count("remote_error") > 0  # p0 got p1's fatal bad_frame Error
    assert net.count("connect") > 3  # the broken link reconnected
    await net.heal_all()
    assert_converged(net.named_replicas())
    assert_no_acknowledged_loss(net)


async def test_a_lost_hello_times_out_and_the_handshake_is_retried() -> None:
    net = SimNetwork(seed=1, peers=2, faults=LinkFaults(drop=1.0), handshake_timeout=0.2, reconnect_delay=0.05)
    await net.run_for(0.3)
    assert net.count("handshake_timeout") >= 1 and not net.link("p0", "p1").open
    net.set_faults(LinkFaults())
    await net.run_for(1.0)
    assert net.link("p0", "p1").open


async def test_a_duplicated_hello_is_a_typed_protocol_error_not_a_crash() -> None:
    net = SimNetwork(seed=0, peers=2, faults=LinkFaults(duplicate=1.0))
    await net.run_for(0.05)
    errors = [r.error for r in net.protocol_errors]
    assert errors and all(isinstance(e, UnexpectedMessageError) for e in errors)
    await net.heal_all()
    assert net.link("p0", "p1").open


async def test_frames_over_the_size_limit_are_refused_with_a_typed_error() -> None:
    net = SimNetwork(seed=0, peers=2, max_message_size=200)
    await net.run_until_quiet()
    net.peer("p0").edit(SetValue("d", "big", "x" * 500))
    await net.run_for(0.05)
    assert any(isinstance(r.error, MessageTooLargeError) for r in net.protocol_errors)
    assert net.peer("p1").replica is not None and net.peer("p1").replica.read_path("d", ("big",)) != "x" * 500
    net.close()


async def test_a_restarted_peer_gets_deletions_it_missed() -> None:
    """Regression: a peer that restarts empty used to send no SyncStep1 and answer the first
    peer's step 1 only, so a deletion that peer lacked never reached it."""
    steps = (
        SetFaults(LinkFaults(drop=0.1)),
        Crash("p1"),
        Mutate("p2", Mutation("m2", (SetValue("shop", "a", None), ListInsert("notes", "a", 0, None)), True)),
        Settle("p2", "m2"),
    )
    schedule = Schedule(("p0", "p1", "p2", "p3"), 1, 0.0, steps)
    net = schedule.network(FakeClock())
    await net.run_schedule(schedule)
    await net.heal_all()
    assert_converged(net.named_replicas())
    assert all(r.read_path("shop", ()) == {} for r in net.replicas())


async def test_acknowledgement_needs_the_other_side_to_persist() -> None:
    net = SimNetwork(seed=0, peers=2, persist_delay=0.5)
    await net.run_until_quiet()
    net.peer("p0").edit(SetValue("d", "x", 1))
    (record,) = net.writes.values()
    await net.run_for(0.1)
    assert not record.acknowledged and net.peer("p1").has_unpersisted
    await net.run_until_quiet()
    assert record.acked_by == {"p1"}


async def test_client_mutation_failure_vanishes_everywhere_and_other_fields_survive() -> None:
    net = SimNetwork(seed=0, peers=3)
    net.peer("p0").edit(SetValue("todos", "t1", {"title": "a", "done": False}))
    await net.run_until_quiet()
    p0 = net.peer("p0")
    failing = Mutation("m1", (SetField("todos", "t1", "title", "b"),), fails=True)
    ok = Mutation("m2", (SetField("todos", "t1", "done", True),))
    m1 = p0.client_mutate(failing)
    p0.client_mutate(ok)
    assert p0.client.get_query_data(("todos", "t1")) == {"title": "b", "done": True}
    await net.run_until_quiet()
    net.peer("p1").edit(SetField("todos", "t1", "note", "by p1"))  # concurrent, another field
    await net.run_until_quiet()
    assert await p0.client_settle("m1") is True
    assert await p0.client_settle("m2") is False
    assert m1.state.status == "error"
    await net.run_until_quiet()
    for replica in net.replicas():
        assert replica.read_path("todos", ("t1",)) == {"title": "a", "done": True, "note": "by p1"}
    assert any(w.origin.kind.value == "rollback" for w in net.writes.values())
    await net.aclose()


async def test_a_crash_abandons_pending_client_mutations() -> None:
    net = SimNetwork(seed=0, peers=2)
    net.peer("p0").edit(SetValue("todos", "t1", {"title": "a"}))
    await net.run_until_quiet()
    p0 = net.peer("p0")
    p0.client_mutate(Mutation("m1", (SetField("todos", "t1", "title", "b"),), fails=True))
    await net.run_until_quiet()
    net.crash("p0")
    assert await p0.client_settle("m1") is False  # nobody is left to roll it back
    net.restart("p0")
    await net.heal_all()
    assert_converged(net.named_replicas())
    assert all(r.read_path("todos", ("t1", "title")) == "b" for r in net.replicas())
    await net.aclose()


def test_bad_network_configuration_is_rejected() -> None:
    with pytest.raises(SimulationError):
        LinkFaults(corrupt=1.5)
    with pytest.raises(SimulationError):
        LinkFaults(truncate=-0.1)
    with pytest.raises(SimulationError):
        SimNetwork(handshake_timeout=0)
    with pytest.raises(SimulationError):
        SimNetwork(reconnect_delay=-1)
    with pytest.raises(SimulationError):
        SimNetwork(max_message_size=0)
    net = SimNetwork(peers=2)
    with pytest.raises(SimulationError):
        net.link("p0", "p0")
    with pytest.raises(SimulationError):
        net.link("p0", "nobody")
