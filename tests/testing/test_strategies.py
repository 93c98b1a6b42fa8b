"""The strategies reject bad arguments at once and generate what they promise."""

from __future__ import annotations

import pytest
from hypothesis import Phase, find, given, settings
from hypothesis.errors import InvalidArgument

from crdtsync.keys import normalize_key
from crdtsync.replica import Replica
from crdtsync.testing import (
    Mutation,
    Schedule,
    SetValue,
    edit_ops,
    json_values,
    mutation_scripts,
    query_keys,
    schedules,
)
from crdtsync.testing.schedule import Crash, Edit, Partition, Settle
from crdtsync.values import strict_equal


@pytest.mark.parametrize(
    "build",
    [
        lambda: json_values(max_depth=-1),
        lambda: json_values(max_leaves=0),
        lambda: json_values(max_depth="3"),  # type: ignore[arg-type]
        lambda: json_values(allow_floats=1),  # type: ignore[arg-type]
        lambda: query_keys(min_parts=0),
        lambda: query_keys(min_parts=3, max_parts=2),
        lambda: edit_ops(doc_ids=()),
        lambda: edit_ops(doc_ids="doc"),
        lambda: edit_ops(keys=("a", "a")),
        lambda: edit_ops(kinds=("teleport",)),
        lambda: edit_ops(kinds=()),
        lambda: edit_ops(values=[1, 2]),  # type: ignore[arg-type]
        lambda: mutation_scripts(max_ops=0),
        lambda: mutation_scripts(fail_probability=1.5),
        lambda: mutation_scripts(min_mutations=3, max_mutations=1),
        lambda: schedules(peers=0),
        lambda: schedules(peers=True),
        lambda: schedules(peers=("a", "a")),
        lambda: schedules(max_steps=0),
        lambda: schedules(faults=("earthquake",)),
        lambda: schedules(persist_delays=(-1.0,)),
    ],
)
def test_bad_arguments_fail_when_the_strategy_is_built(build: object) -> None:
    with pytest.raises(InvalidArgument):
        build()  # type: ignore[operator]


@given(json_values(max_depth=3, max_leaves=12))
def test_json_values_round_trip_through_a_replica_exactly(value: object) -> None:
    r = Replica()
    try:
        r.write_path("doc", ("v",), value)
        assert strict_equal(r.read_path("doc", ("v",)), value)
    finally:
        r.close()


@given(json_values(max_depth=2))
def test_json_values_respect_max_depth(value: object) -> None:
    def depth(v: object) -> int:
        if isinstance(v, dict):
            return 1 + max((depth(x) for x in v.values()), default=0)
        if isinstance(v, list):
            return 1 + max((depth(x) for x in v), default=0)
        return 0

    assert depth(value) <= 2


@given(json_values(max_depth=0, allow_floats=False))
def test_scalars_only_without_floats(value: object) -> None:
    assert not isinstance(value, (dict, list, float))


@given(query_keys(max_parts=3))
def test_query_keys_are_valid(key: tuple[object, ...]) -> None:
    assert normalize_key(key) == key
    assert 1 <= len(key) <= 3


@given(edit_ops(doc_ids=("x",), keys=("k",), kinds=("set",)))
def test_edit_ops_honour_kinds_docs_and_keys(op: object) -> None:
    assert isinstance(op, SetValue)
    assert (op.doc_id, op.key) == ("x", "k")


@given(mutation_scripts(max_mutations=4, fail_probability=1.0))
def test_mutation_scripts_have_unique_ids_and_fail_as_asked(script: list[Mutation]) -> None:
    assert 1 <= len(script) <= 4
    assert len({m.id for m in script}) == len(script)
    assert all(m.fails and m.ops for m in script)


@given(schedules(peers=("a", "b", "c"), max_steps=25))
def test_schedules_name_known_peers_and_settle_every_mutation(schedule: Schedule) -> None:
    assert schedule.peers == ("a", "b", "c")
    mutated = {(s.peer, s.mutation.id) for s in schedule.steps if type(s).__name__ == "Mutate"}  # type: ignore[union-attr]
    settled = {(s.peer, s.mutation_id) for s in schedule.steps if isinstance(s, Settle)}
    assert mutated == settled
    for step in schedule.steps:
        for name in ("peer", "a", "b"):
            if hasattr(step, name):
                assert getattr(step, name) in schedule.peers


@given(schedules(peers=2, faults=(), mutations=False, max_steps=15))
def test_a_reliable_schedule_has_no_fault_steps(schedule: Schedule) -> None:
    assert all(isinstance(s, Edit) or type(s).__name__ == "Advance" for s in schedule.steps)


def test_fault_schedules_can_contain_partitions_and_crashes() -> None:
    found = find(
        schedules(
            peers=3,
            min_steps=20,
            max_steps=30,
            faults=("partition", "crash"),
            mutations=False,
            ops=edit_ops(kinds=("delete",)),
        ),
        lambda s: {Partition, Crash} <= {type(step) for step in s.steps},
        settings=settings(max_examples=2000, database=None, phases=[Phase.generate]),
    )
    assert any(isinstance(step, Partition) for step in found.steps)
