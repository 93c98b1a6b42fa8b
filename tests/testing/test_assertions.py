"""assert_converged's diff, intent helpers, the replica fixtures and the plugin's profiles."""

from __future__ import annotations

import pytest
from hypothesis import settings

from crdtsync.errors import NotConvergedError
from crdtsync.relay import Relay
from crdtsync.replica import Replica
from crdtsync.testing import (
    Mutation,
    SetValue,
    TextInsert,
    apply_mutation,
    assert_converged,
    concurrent_edit_vs_delete,
    differences,
    rollback_mutation,
    two_inserts_same_position,
)
from crdtsync.testing.plugin import load_selected_profile, register_profiles, selected_profile


def test_divergent_replicas_fail_with_a_readable_diff() -> None:
    a, b = Replica(), Replica()
    a.write_path("shop", ("milk",), {"qty": 2, "unit": "l"})
    b.write_path("shop", ("milk",), {"qty": 3, "unit": "l"})
    b.write_path("notes", ("x",), "only on b")
    with pytest.raises(NotConvergedError) as info:
        assert_converged({"alice": a, "bob": b})
    message = str(info.value)
    assert "replicas differ in 2 place(s)" in message
    assert "doc 'shop' at milk/qty:" in message
    assert "alice: 2" in message and "bob: 3" in message
    assert "doc 'notes' at x:" in message and "alice: MISSING" in message
    assert isinstance(info.value, AssertionError)


def test_numbers_are_compared_strictly_and_lists_by_index() -> None:
    a, b = Replica(), Replica()
    a.write_path("d", ("v",), [1, 2, 3])
    b.write_path("d", ("v",), [1, 2.5, 3])
    (diff,) = differences([a, b])
    assert diff.path == ("v", 1) and diff.values == (2, 2.5)
    with pytest.raises(NotConvergedError, match=r"replica\[0\]: 2"):
        assert_converged([a, b], docs=["d"])
    assert_converged([a, b], docs=["other"])


def test_replica_pair_fixture_syncs_both_ways(replica_pair: tuple[Replica, Replica]) -> None:
    a, b = replica_pair
    a.write_path("d", ("x",), 1)
    TextInsert("d", "t", 0, "héllo").apply(b)
    assert_converged([a, b])
    assert a.read_path("d", ()) == {"x": 1, "t": "héllo"}


def test_replica_fixture_is_empty(replica: Replica) -> None:
    assert replica.doc_ids() == []


def test_concurrent_edit_vs_delete_reports_that_the_delete_wins() -> None:
    outcome = concurrent_edit_vs_delete(initial={"title": "milk", "qty": 1}, field="qty", new_value=2)
    assert outcome.converged
    assert outcome.deleted and not outcome.edit_survived


def test_two_inserts_at_one_position_keep_both_in_one_order() -> None:
    outcome = two_inserts_same_position(initial=["x", "y"], index=1, first="A", second="B")
    assert outcome.converged and outcome.both_kept
    assert sorted(outcome.items) == ["A", "B", "x", "y"]
    assert outcome.items[0] == "x" and outcome.items[-1] == "y"


def test_rollback_restores_touched_slots_and_keeps_concurrent_other_slots() -> None:
    r = Replica()
    r.write_path("d", ("a",), 1)
    TextInsert("d", "t", 0, "abc").apply(r)
    result = apply_mutation(
        r, Mutation("m1", (SetValue("d", "a", 2), TextInsert("d", "t", 1, "ZZ"), SetValue("d", "n", 0)), True)
    )
    assert r.read_path("d", ()) == {"a": 2, "t": "aZZbc", "n": 0}
    r.write_path("d", ("other",), "concurrent")
    assert rollback_mutation(r, result)
    assert r.read_path("d", ()) == {"a": 1, "t": "abc", "other": "concurrent"}
    assert not rollback_mutation(r, result)  # nothing left to undo


def test_profiles_are_selected_from_the_environment_and_reload_safely() -> None:
    assert selected_profile({"HYPOTHESIS_PROFILE": "deep", "CI": "true"}) == "deep"
    assert selected_profile({"CI": "true"}) == "ci"
    assert selected_profile({}) == "dev"
    current = settings.get_current_profile_name()
    try:
        register_profiles()
        register_profiles()
        assert load_selected_profile({"CI": "1"}) == "ci"
        assert load_selected_profile({"CI": "1"}) == "ci"
        assert settings().max_examples < settings.get_profile("deep").max_examples
        with pytest.raises(pytest.UsageError, match="not a registered"):
            load_selected_profile({"HYPOTHESIS_PROFILE": "nope"})
    finally:
        settings.load_profile(current)


async def test_relay_fixture_serves_a_y_websocket_client(relay: Relay) -> None:
    import asyncio

    import websockets

    assert relay.url.startswith("ws://127.0.0.1:")
    async with websockets.connect(f"{relay.url}/room1") as ws:
        first = await asyncio.wait_for(ws.recv(), 5)
    assert isinstance(first, bytes) and first[:2] == b"\x00\x00"  # SyncStep1 opens the room
