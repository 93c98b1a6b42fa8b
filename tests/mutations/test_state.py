from __future__ import annotations

from crdtsync.mutations.state import (
    Continue,
    Error,
    Failed,
    MutationState,
    Pause,
    Pending,
    Reset,
    Resolved,
    SetContext,
    Success,
    reduce,
)


def test_lifecycle_through_the_reducer() -> None:
    s = reduce(MutationState(), Pending({"a": 1}, paused=False, at=5.0))
    assert (s.status, s.phase, s.variables, s.submitted_at) == ("pending", "pending", {"a": 1}, 5.0)
    s = reduce(s, SetContext("snap"))
    s = reduce(s, Pause())
    assert s.phase == "paused" and s.is_pending
    s = reduce(s, Continue())
    assert s.phase == "pending"
    s = reduce(s, Failed(1, ValueError("x")))
    assert s.failure_count == 1
    s = reduce(s, Resolved({"a": 2}))
    assert s.variables == {"a": 2}
    ok = reduce(s, Success("data"))
    assert (ok.status, ok.data, ok.failure_count, ok.failure_reason, ok.context) == ("success", "data", 0, None, "snap")
    err = reduce(s, Error(KeyError("k")))
    assert err.phase == "error" and isinstance(err.error, KeyError) and err.failure_count == 2
    assert reduce(err, Reset()) == MutationState()


def test_pending_while_offline_starts_paused() -> None:
    s = reduce(MutationState(), Pending(None, paused=True, at=0.0))
    assert s.phase == "paused"
    assert not s.is_settled
