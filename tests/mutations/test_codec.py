"""The outbox's variables codec (msgpack) and usage errors."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crdtsync import QueryClient
from crdtsync.errors import MutationError, OutboxError
from crdtsync.mutations.outbox import pack_variables, unpack_variables

json_like = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@given(json_like)
def test_variables_round_trip(value: Any) -> None:
    assert unpack_variables(pack_variables(value)) == value


@given(st.lists(st.integers(0, 9), max_size=4).map(tuple))
def test_tuples_come_back_as_lists(value: tuple[int, ...]) -> None:
    assert unpack_variables(pack_variables(value)) == list(value)


@pytest.mark.parametrize("bad", [object(), {1: "non-str key ok in msgpack"}.keys(), 2**70, {"s": {1, 2}}])
def test_unserialisable_variables_are_typed_errors(bad: Any) -> None:
    with pytest.raises(OutboxError):
        pack_variables(bad)


@pytest.mark.parametrize("blob", [b"\xc1", b"\x92\x01"])
def test_corrupt_stored_variables_are_typed_errors(blob: bytes) -> None:
    with pytest.raises(OutboxError):
        unpack_variables(blob)


def test_mutate_outside_an_event_loop_is_a_typed_error() -> None:
    client = QueryClient()
    with pytest.raises(MutationError, match="event loop"):
        client.mutate(1)
    assert client.is_mutating() == 0
    client.online_manager.set_online(False)
    client.online_manager.set_online(True)  # no loop: nothing to resume, and no crash
