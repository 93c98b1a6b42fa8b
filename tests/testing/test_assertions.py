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


# -- shared-type kinds -----------------------------------------------------------------------


def _kind_pair(kind: str) -> tuple[Replica, Replica]:
    """Two replicas whose documents decode to the same value at ``v`` but hold it as a shared
    type on ``a`` and as one plain value on ``b``."""
    a, b = Replica(), Replica()
    if kind == "Text":
        TextInsert("d", "v", 0, "hi").apply(a)
        b.write_path("d", ("v",), "hi")
    elif kind == "Map":
        a.write_path("d", ("v",), {"x": 1, "y": "z"})  # depth None: shared all the way down
        b.write_path("d", ("v",), {"x": 1, "y": "z"}, depth=0)  # one plain dict
    else:
        a.write_path("d", ("v",), [1, "two"])
        b.write_path("d", ("v",), [1, "two"], depth=0)
    assert a.read_path("d", ()) == b.read_path("d", ())  # same decoded value, different documents
    return a, b


@pytest.mark.parametrize(("kind", "plain"), [("Text", "str"), ("Map", "dict"), ("Array", "list")])
def test_a_shared_type_and_an_equal_plain_value_have_not_converged(kind: str, plain: str) -> None:
    a, b = _kind_pair(kind)
    (diff,) = differences({"alice": a, "bob": b})
    assert diff.path == ("v",) and diff.kinds == (kind, plain) and diff.kind_mismatch
    with pytest.raises(NotConvergedError) as info:
        assert_converged({"alice": a, "bob": b})
    message = str(info.value)
    assert "replicas differ in 1 place(s)" in message
    assert f"doc 'd' at v: kinds differ (shared {kind} vs plain {plain}):" in message
    assert f"alice: shared {kind} " in message and f"bob: plain {plain} " in message
    with pytest.raises(NotConvergedError, match=f"plain {plain} .* shared {kind}"):
        assert_converged([b, a])  # order does not matter


def test_a_kind_mismatch_is_found_deep_inside_an_entity_next_to_a_value_difference() -> None:
    a, b = Replica(), Replica()
    a.write_path("shop", ("milk",), {"qty": 2, "tags": ["x"], "note": {"a": 1}})
    b.write_path("shop", ("milk",), {"qty": 3, "tags": ["x"]})
    b.write_path("shop", ("milk", "note"), {"a": 1}, depth=0)
    by_path = {d.path: d for d in differences([a, b])}
    assert set(by_path) == {("milk", "qty"), ("milk", "note")}
    assert by_path[("milk", "note")].kinds == ("Map", "dict")
    assert not by_path[("milk", "qty")].kind_mismatch and by_path[("milk", "qty")].values == (2, 3)
    message = ""
    try:
        assert_converged([a, b])
    except NotConvergedError as exc:
        message = str(exc)
    assert "doc 'shop' at milk/qty:\n    replica[0]: 2\n    replica[1]: 3" in message
    assert "doc 'shop' at milk/note: kinds differ (shared Map vs plain dict):" in message


def test_a_shared_type_on_one_replica_and_nothing_on_another_is_a_plain_difference() -> None:
    a, b = Replica(), Replica()
    TextInsert("d", "t", 0, "hi").apply(a)
    b.write_path("d", ("other",), 1)
    by_path = {d.path: d for d in differences({"a": a, "b": b})}
    assert by_path[("t",)].kinds == ("Text", "MISSING") and not by_path[("t",)].kind_mismatch
    with pytest.raises(NotConvergedError, match=r"doc 'd' at t:\n    a: 'hi'\n    b: MISSING"):
        assert_converged({"a": a, "b": b})


def test_identical_structures_of_every_kind_still_converge(replica_pair: tuple[Replica, Replica]) -> None:
    a, b = replica_pair  # synced both ways
    TextInsert("d", "text", 0, "héllo").apply(a)
    a.write_path("d", ("shared",), {"m": {"x": 1.5}, "l": [1, {"k": "v"}]})
    b.write_path("d", ("plain_map",), {"x": 1, "l": [2]}, depth=0)
    b.write_path("d", ("plain_list",), [1, 2.0, "three"], depth=0)
    b.write_path("d", ("plain_str",), "hi")
    a.write_path("e", ("n",), None)
    assert differences([a, b]) == []
    assert_converged([a, b])
    assert b.raw("d", ("text",)).__class__.__name__ == "Text"


def test_a_float_and_an_int_in_plain_values_keep_their_kinds_in_the_diff() -> None:
    a, b = Replica(), Replica()
    a.write_path("d", ("v",), {"n": 1.0}, depth=0)
    b.write_path("d", ("v",), {"n": 1}, depth=0)
    (diff,) = differences([a, b])
    assert diff.path == ("v", "n") and diff.values == (1.0, 1) and diff.kinds == ("float", "int")
    assert not diff.kind_mismatch
