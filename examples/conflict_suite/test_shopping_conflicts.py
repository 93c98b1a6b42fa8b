"""The shopping list's conflict suite, written only with the public crdtsync.testing toolkit.

Run it with ``python -m pytest examples/conflict_suite``.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from shopping import DOC, ShoppingList

from crdtsync.testing import (
    LinkFaults,
    SimNetwork,
    assert_converged,
    assert_no_acknowledged_loss,
    connected_pair,
)

PEERS = ("alice", "bob", "carol")
names = st.sampled_from(["milk", "eggs", "bread", "café"])
actions = st.one_of(
    st.tuples(st.just("add"), names, st.integers(1, 5)),
    st.tuples(st.just("set_qty"), names, st.integers(0, 9)),
    st.tuples(st.just("check"), names, st.just(0)),
    st.tuples(st.just("remove"), names, st.just(0)),
)
# One step: who acts, what they do, and whether the network misbehaves meanwhile.
steps = st.lists(
    st.tuples(st.sampled_from(PEERS), actions, st.sampled_from(["none", "partition", "crash", "heal"])),
    max_size=25,
)


def run_action(app: ShoppingList, action: tuple[str, str, int]) -> None:
    kind, name, n = action
    if kind == "add":
        app.add(name, n)
    elif kind == "set_qty":
        app.set_qty(name, n)
    elif kind == "check":
        app.check(name)
    else:
        app.remove(name)


@given(steps, st.integers(0, 2**32 - 1))
async def test_everyone_ends_with_the_same_list(plan: list, seed: int) -> None:
    faults = LinkFaults(drop=0.2, duplicate=0.1, reorder=0.3, corrupt=0.02, truncate=0.02)
    net = SimNetwork(seed=seed, peers=PEERS, faults=faults)
    try:
        for who, action, trouble in plan:
            peer = net.peer(who)
            if trouble == "partition":
                net.isolate(who)
            elif trouble == "crash":
                net.crash(who)
                net.restart(who)
            elif trouble == "heal":
                for other in PEERS:
                    if other != who:
                        net.heal(who, other)
            if peer.replica is not None:
                run_action(ShoppingList(peer.replica), action)
            await net.run_for(0.01)
        await net.heal_all()
        assert_converged(net.named_replicas(), docs=[DOC])
        assert_no_acknowledged_loss(net)
        assert net.undetected_damage == []  # damaged frames were all rejected by the protocol
        # The app's own invariant: every item on the list is well formed.
        for replica in net.replicas():
            for item in ShoppingList(replica).items().values():
                assert set(item) <= {"qty", "done"}
    finally:
        net.close()


def test_bought_on_one_phone_while_quantity_changed_on_the_other() -> None:
    a, b, disconnect = connected_pair()
    ShoppingList(a).add("milk", 1)
    disconnect()  # both go offline
    ShoppingList(a).check("milk")
    ShoppingList(b).set_qty("milk", 3)
    from crdtsync.testing import connect

    connect(a, b)
    # Different fields of one item merge: both edits survive.
    assert ShoppingList(a).items() == ShoppingList(b).items() == {"milk": {"qty": 3, "done": True}}
