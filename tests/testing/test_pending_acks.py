"""A simulated peer acknowledges a write only once the write is integrated in its document.

yrs keeps an update whose dependencies are missing as *pending*: stored, but not part of the
document (the state vector does not cover it). A peer that acknowledged such an update would
make the loss check blame the system under test for a loss the simulator caused."""

from __future__ import annotations

from crdtsync.testing import (
    FakeClock,
    LinkFaults,
    SetValue,
    SimNetwork,
    assert_converged,
    assert_no_acknowledged_loss,
)
from crdtsync.testing.contains import decode_state_vector
from crdtsync.testing.faults import RELIABLE


async def _author_write_lost_in_handshake() -> SimNetwork:
    """p0 writes ``first`` while the link is handshaking, p0's SyncStep1 (the only way
    ``first`` would reach p1) is dropped, then p0 writes ``second``, which p1 receives but
    cannot integrate. p0 buffers its own writes for 10 s, p1 stores at once. Default latency
    is 1 ms per frame, so the schedule below is exact."""
    net = SimNetwork(seed=0, clock=FakeClock(), peers=[])
    author = net.add_peer("p0", persist_delay=10.0)
    net.add_peer("p1")  # write-through
    author.edit(SetValue("d", "first", 1))  # the link is not open yet: sent to nobody
    await net.run_for(0.0015)  # Hello reached p1; its Welcome is in flight
    net.set_faults(LinkFaults(drop=1.0), src="p0", dst="p1")
    await net.run_for(0.001)  # Welcome arrives, p0 opens and sends SyncStep1: dropped
    drops = [e.detail for e in net.trace if e.what == "drop"]
    assert [d.split("#")[0] for d in drops] == ["sync_step1"]
    assert net.link("p0", "p1").open
    net.set_faults(RELIABLE)
    author.edit(SetValue("d", "second", 2))
    await net.run_for(0.1)  # delivered and stored by p1; p0's own buffer is not flushed yet
    return net


async def test_a_pending_update_is_not_acknowledged() -> None:
    net = await _author_write_lost_in_handshake()
    first, second = net.writes.values()
    p1 = net.peer("p1")
    assert p1.replica is not None
    assert second.peer == "p0" and "p1" in second.persisted_by  # p1 stored the bytes...
    assert decode_state_vector(p1.replica.state_vector("d")).get(second.client, 0) < second.end  # ...pending
    assert not second.contained_in(p1.replica)
    assert second.acked_by == set()
    assert net.count("ack") == 0
    assert first.acked_by == set() and first.persisted_by == set()


async def test_author_crash_after_a_dropped_handshake_frame_is_no_false_alarm() -> None:
    net = await _author_write_lost_in_handshake()
    net.crash("p0")  # both writes were only in p0's write-behind buffer: gone for good
    await net.heal_all()
    assert_converged(net.named_replicas())
    assert_no_acknowledged_loss(net)  # used to blame the system for "second", acked while pending
    assert net.acknowledged_writes() == []
    # p1's SyncStep2 to the restarted p0 carries "second" (yrs encodes pending structs) but
    # must not claim it: p0 storing it would count as "persisted by its author", a loss again.
    _, second = net.writes.values()
    assert second.persisted_by == {"p1"}


async def test_the_pending_write_is_acknowledged_once_it_integrates() -> None:
    net = await _author_write_lost_in_handshake()
    _, second = net.writes.values()
    await net.heal_all()  # p0 is still up: the resync brings "first", so "second" integrates
    assert second.acked_by == {"p1"}
    assert_converged(net.named_replicas())
    assert_no_acknowledged_loss(net)


async def test_a_write_waiting_for_another_authors_item_is_acked_when_that_item_arrives() -> None:
    """p0 overwrites a key p2 wrote; p1 cannot integrate p0's write until p2's item reaches it
    on a different link, and must acknowledge p0's write then (not before, not never)."""
    net = SimNetwork(seed=0, clock=FakeClock(), peers=3)
    await net.run_until_quiet()
    net.partition("p1", "p2")
    net.peer("p2").edit(SetValue("d", "k", 1))
    await net.run_until_quiet()  # p0 has p2's item, p1 does not
    net.peer("p0").edit(SetValue("d", "k", 2))  # its item points at p2's: pending at p1
    await net.run_until_quiet()
    record = next(w for w in net.writes.values() if w.peer == "p0")
    p1 = net.peer("p1")
    assert p1.replica is not None and not record.contained_in(p1.replica)
    assert record.acked_by == {"p2"}
    net.heal("p1", "p2")  # p2's SyncStep2 to p1 carries the missing item
    await net.run_until_quiet()
    assert record.contained_in(p1.replica)
    assert record.acked_by == {"p1", "p2"}
    assert_converged(net.named_replicas())
    assert_no_acknowledged_loss(net)
