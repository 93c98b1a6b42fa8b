"""The simulated network: faults really happen, runs are deterministic per seed, crashes lose
only what was not persisted, and the loss check catches a store that forgets."""

from __future__ import annotations

import pytest

from crdtsync.errors import AcknowledgedWriteLostError, SimulationError
from crdtsync.testing import (
    FakeClock,
    LinkFaults,
    ListInsert,
    SetValue,
    SimNetwork,
    SimStore,
    TextInsert,
    assert_converged,
    assert_no_acknowledged_loss,
)

NOISY = LinkFaults(drop=0.3, duplicate=0.3, reorder=0.5, max_delay=0.02)


async def _busy_run(seed: int, faults: LinkFaults = NOISY) -> SimNetwork:
    net = SimNetwork(seed=seed, clock=FakeClock(), peers=3, faults=faults)
    for i in range(30):
        peer = net.peer(f"p{i % 3}")
        peer.edit([SetValue("d", f"k{i % 4}", i), ListInsert("d", "l", i, i), TextInsert("t", "x", i, "ü")][i % 3])
        await net.run_for(0.003)
    await net.run_until_quiet()
    return net


@pytest.mark.parametrize("what", ["drop", "duplicate", "reorder", "deliver"])
async def test_each_message_fault_actually_happens(what: str) -> None:
    net = await _busy_run(seed=1)
    assert net.count(what) > 0


async def test_a_reliable_network_neither_drops_nor_duplicates() -> None:
    net = await _busy_run(seed=1, faults=LinkFaults())
    assert net.count("drop") == net.count("duplicate") == net.count("reorder") == 0
    assert_converged(net.named_replicas())  # no heal needed


async def test_same_seed_same_trace_and_different_seed_different_trace() -> None:
    a, b, c = await _busy_run(seed=5), await _busy_run(seed=5), await _busy_run(seed=6)
    strip = lambda net: [(e.time - net.trace[0].time, e.what, e.src, e.dst, e.detail) for e in net.trace]  # noqa: E731
    assert strip(a) == strip(b)
    assert strip(a) != strip(c)
    assert [r.read_path("d", ()) for r in a.replicas()] == [r.read_path("d", ()) for r in b.replicas()]


async def test_faulty_run_diverges_until_heal_all_then_converges() -> None:
    net = await _busy_run(seed=2, faults=LinkFaults(drop=0.5))
    with pytest.raises(AssertionError):
        assert_converged(net.named_replicas())
    await net.heal_all()
    assert_converged(net.named_replicas())
    assert_no_acknowledged_loss(net)


async def test_partition_blocks_messages_and_heal_resyncs() -> None:
    net = SimNetwork(seed=0, peers=2)
    net.partition("p0", "p1")
    net.peer("p0").edit(SetValue("d", "x", 1))
    await net.run_until_quiet()
    assert net.peer("p1").replica is not None
    assert net.peer("p1").replica.read_path("d", ("x",)) != 1
    assert not any(e.what == "send" and e.detail.startswith("update") for e in net.trace)  # link is closed
    assert net.count("lost_closed") >= 1  # the Hello in flight when the link was cut
    net.heal("p0", "p1")
    await net.run_until_quiet()
    assert net.peer("p1").replica.read_path("d", ("x",)) == 1


async def test_crash_loses_unpersisted_writes_but_keeps_persisted_ones() -> None:
    net = SimNetwork(seed=0, peers=2, persist_delay=1.0)
    net.isolate("p0")
    p0 = net.peer("p0")
    p0.edit(SetValue("d", "kept", 1))
    await net.run_for(1.5)  # flushed to p0's store
    p0.edit(SetValue("d", "lost", 2))  # still in the write-behind buffer
    net.crash("p0")
    assert not p0.up and net.count("crash") == 1
    net.restart("p0")
    assert p0.incarnation == 1 and p0.replica is not None
    assert p0.replica.read_path("d", ()) == {"kept": 1}
    await net.heal_all()
    assert_converged(net.named_replicas())
    assert_no_acknowledged_loss(net)


async def test_acknowledgement_needs_another_peer_to_persist() -> None:
    net = SimNetwork(seed=0, peers=2, persist_delay=0.5)
    net.peer("p0").edit(SetValue("d", "x", 1))
    (record,) = net.writes.values()
    await net.run_for(0.1)  # delivered, not yet persisted by p1
    assert not record.acknowledged
    await net.run_until_quiet()
    assert record.acked_by == {"p1"} and record.persisted_by == {"p0", "p1"}


async def test_loss_check_catches_a_store_that_forgets(monkeypatch: pytest.MonkeyPatch) -> None:
    net = SimNetwork(seed=0, peers=2)
    net.peer("p0").edit(SetValue("d", "x", 1))
    await net.run_until_quiet()
    assert net.acknowledged_writes()
    for name in ("p0", "p1"):  # both stores lose everything, then both peers crash
        net.peer(name).store = SimStore()
        net.crash(name)
    await net.heal_all()
    with pytest.raises(AcknowledgedWriteLostError, match=r"write #1 by p0"):
        assert_no_acknowledged_loss(net)


async def test_run_until_quiet_is_bounded() -> None:
    net = SimNetwork(seed=0, peers=2, max_steps=1, faults=LinkFaults(min_delay=0.01, max_delay=0.02))
    for i in range(5):
        net.peer("p0").edit(SetValue("d", "x", i))
    with pytest.raises(SimulationError, match="max_steps"):
        await net.run_until_quiet()


def test_bad_configuration_is_rejected_early() -> None:
    with pytest.raises(SimulationError):
        LinkFaults(drop=1.5)
    with pytest.raises(SimulationError):
        LinkFaults(min_delay=0.2, max_delay=0.1)
    with pytest.raises(SimulationError):
        SimNetwork(peers=["a", "a"])
    with pytest.raises(SimulationError):
        SimNetwork(persist_delay=-1)
    net = SimNetwork(peers=2)
    with pytest.raises(SimulationError):
        net.peer("nobody")
    with pytest.raises(SimulationError):
        net.partition("p0", "p0")
    net.crash("p0")
    with pytest.raises(SimulationError, match="crashed"):
        net.peer("p0").edit(SetValue("d", "x", 1))


def test_fixtures_from_the_plugin(sim_network: SimNetwork, fake_clock: FakeClock) -> None:
    assert sim_network.clock is fake_clock
    assert sorted(sim_network.peers) == ["p0", "p1", "p2"]
