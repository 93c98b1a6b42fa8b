"""The query reducer (crdtsync/query/state.py): each action's rules, and purity."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crdtsync.query.state import (
    Action,
    Cancelled,
    Continue,
    DataChanged,
    Error,
    Failed,
    Fetch,
    Invalidate,
    Pause,
    QueryState,
    SetState,
    Success,
    reduce,
)
from crdtsync.values import MISSING

BOOM = RuntimeError("boom")
EMPTY = QueryState()
LOADED = QueryState(data={"a": 1}, status="success", data_update_count=1, data_updated_at=10.0)


def test_fetch_from_nothing_is_pending_and_fetching_or_paused() -> None:
    st1 = reduce(EMPTY, Fetch(meta={"direction": "forward"}))
    assert (st1.status, st1.fetch_status, st1.fetch_meta) == ("pending", "fetching", {"direction": "forward"})
    assert reduce(EMPTY, Fetch(paused=True)).fetch_status == "paused"


def test_fetch_resets_failures_and_keeps_the_error_only_when_there_is_data() -> None:
    failed = reduce(reduce(LOADED, Error(BOOM, 20.0)), Failed(2, BOOM))
    again = reduce(failed, Fetch())
    assert (again.fetch_failure_count, again.fetch_failure_reason) == (0, None)
    assert again.error is BOOM and again.status == "error"  # data is kept, so is the error
    no_data = reduce(reduce(EMPTY, Error(BOOM, 1.0)), Fetch())
    assert no_data.error is None and no_data.status == "pending"  # nothing to show: loading again


def test_success_records_data_and_clears_error_and_invalidation() -> None:
    st1 = reduce(reduce(reduce(EMPTY, Invalidate()), Error(BOOM, 1.0)), Fetch())
    done = reduce(st1, Success([1], 42.0))
    assert (done.data, done.data_updated_at, done.status, done.fetch_status) == ([1], 42.0, "success", "idle")
    assert done.error is None and not done.is_invalidated
    assert done.data_update_count == st1.data_update_count + 1


def test_a_manual_success_leaves_the_fetch_in_flight_alone() -> None:
    fetching = reduce(reduce(LOADED, Fetch()), Failed(1, BOOM))
    manual = reduce(fetching, Success({"a": 2}, 50.0, manual=True))
    assert manual.fetch_status == "fetching"
    assert (manual.fetch_failure_count, manual.fetch_failure_reason) == (1, BOOM)
    fetched = reduce(fetching, Success({"a": 2}, 50.0))
    assert (fetched.fetch_status, fetched.fetch_failure_count, fetched.fetch_failure_reason) == ("idle", 0, None)


def test_data_changed_moves_data_but_not_the_update_time() -> None:
    changed = reduce(LOADED, DataChanged({"a": 2}))
    assert changed.data == {"a": 2} and changed.data_updated_at == 10.0
    assert changed.data_update_count == 2 and changed.status == "success"
    appeared = reduce(EMPTY, DataChanged(5))
    assert appeared.status == "success" and appeared.data_updated_at == 0.0
    gone = reduce(LOADED, DataChanged(MISSING))
    assert gone.status == "pending" and not gone.has_data
    errored = reduce(reduce(EMPTY, Error(BOOM, 1.0)), DataChanged(MISSING))
    assert errored.status == "error"


def test_error_keeps_data_and_counts() -> None:
    st1 = reduce(reduce(LOADED, Fetch()), Error(BOOM, 30.0))
    assert st1.data == {"a": 1} and st1.status == "error" and st1.fetch_status == "idle"
    assert (st1.error, st1.error_update_count, st1.error_updated_at) == (BOOM, 1, 30.0)
    assert (st1.fetch_failure_count, st1.fetch_failure_reason) == (1, BOOM)


def test_failed_pause_continue_invalidate() -> None:
    assert reduce(EMPTY, Failed(3, BOOM)).fetch_failure_count == 3
    paused = reduce(reduce(EMPTY, Fetch()), Pause())
    assert paused.fetch_status == "paused"
    assert reduce(paused, Continue()).fetch_status == "fetching"
    assert reduce(LOADED, Invalidate()).is_invalidated


def test_cancel_reverts_metadata_but_keeps_the_current_data() -> None:
    before = reduce(LOADED, Invalidate())
    during = reduce(reduce(before, Fetch()), DataChanged({"a": 9}))
    reverted = reduce(during, Cancelled(before))
    assert reverted == dataclasses.replace(before, data={"a": 9}, fetch_status="idle")
    kept = reduce(during, Cancelled(None))
    assert kept == dataclasses.replace(during, fetch_status="idle")


def test_set_state_replaces_everything() -> None:
    assert reduce(LOADED, SetState(EMPTY)) is EMPTY


def test_an_unknown_action_is_refused() -> None:
    with pytest.raises(TypeError):
        reduce(EMPTY, object())  # type: ignore[arg-type]


errors = st.sampled_from([BOOM, ValueError("v")])
actions: st.SearchStrategy[Action] = st.one_of(
    st.builds(Fetch, st.booleans()),
    st.builds(Success, st.integers(), st.floats(0, 1e6), st.booleans()),
    st.builds(DataChanged, st.one_of(st.integers(), st.just(MISSING))),
    st.builds(Error, errors, st.floats(0, 1e6)),
    st.builds(Failed, st.integers(0, 5), errors),
    st.just(Pause()), st.just(Continue()), st.just(Invalidate()),
    st.just(Cancelled(None)), st.just(SetState(LOADED)),
)


@given(st.lists(st.one_of(actions, st.just("revert")), max_size=12))
def test_reduce_is_pure_and_keeps_the_status_rules(seq: list[Action | str]) -> None:
    """``"revert"``: cancel back to the state the last Fetch started from (as Query does)."""
    state = EMPTY
    fetch_start = EMPTY
    for step in seq:
        action = Cancelled(fetch_start) if step == "revert" else step
        assert not isinstance(action, str)
        if isinstance(action, Fetch):
            fetch_start = state
        snapshot = dataclasses.replace(state)
        nxt = reduce(state, action)
        assert state == snapshot  # the input is never changed
        assert reduce(state, action) == nxt  # same input, same output
        assert nxt.fetch_status in ("fetching", "paused", "idle")
        if isinstance(action, Success):
            assert nxt.status == "success" and nxt.has_data
        if isinstance(action, Error):
            assert nxt.status == "error" and nxt.fetch_status == "idle"
        if nxt.status == "success" and step != "revert":
            assert nxt.has_data
        state = nxt


@pytest.mark.xfail(strict=True, reason="known: a reverted cancel restores status 'success' even when the "
                   "document's data vanished during the fetch (left as is: behaviour unchanged in this refactor)")
def test_a_reverted_cancel_after_the_data_vanished_is_not_success() -> None:
    during = reduce(reduce(LOADED, Fetch()), DataChanged(MISSING))
    assert reduce(during, Cancelled(LOADED)).status != "success"
