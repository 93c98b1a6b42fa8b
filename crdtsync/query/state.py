"""Query state and the pure reducer that is its only way to change.

Rules:
- ``status`` is ``pending`` until data exists, ``success`` once it does, ``error`` after a fetch
  failed (data, if any, is kept and marked invalidated, so it is stale).
- ``fetch_status`` is ``fetching`` while a fetch runs, ``paused`` while it waits for the network,
  ``idle`` otherwise.
- A successful fetch or a manual write clears the error and the invalidation and sets
  ``data_updated_at``. A change that arrived from a peer (``DataChanged``) updates ``data`` but
  not ``data_updated_at``: it did not come from this query's source of truth.
- ``Cancel`` with ``revert`` restores the state saved when the fetch began.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal, TypeAlias

from ..values import MISSING

Status = Literal["pending", "error", "success"]
FetchStatus = Literal["fetching", "paused", "idle"]


@dataclass(frozen=True, slots=True)
class QueryState:
    data: Any = MISSING
    data_update_count: int = 0
    data_updated_at: float = 0.0
    error: BaseException | None = None
    error_update_count: int = 0
    error_updated_at: float = 0.0
    fetch_failure_count: int = 0
    fetch_failure_reason: BaseException | None = None
    fetch_meta: dict[str, Any] | None = None
    is_invalidated: bool = False
    status: Status = "pending"
    fetch_status: FetchStatus = "idle"

    @property
    def has_data(self) -> bool:
        return self.data is not MISSING


# -- actions ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Fetch:
    paused: bool = False
    meta: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Success:
    data: Any
    updated_at: float
    manual: bool = False


@dataclass(frozen=True, slots=True)
class DataChanged:
    """The document changed under the query (a peer, a mutation, another key's write)."""

    data: Any


@dataclass(frozen=True, slots=True)
class Error:
    error: BaseException
    at: float


@dataclass(frozen=True, slots=True)
class Failed:
    failure_count: int
    error: BaseException


@dataclass(frozen=True, slots=True)
class Pause:
    pass


@dataclass(frozen=True, slots=True)
class Continue:
    pass


@dataclass(frozen=True, slots=True)
class Invalidate:
    pass


@dataclass(frozen=True, slots=True)
class Cancelled:
    revert_to: QueryState | None


@dataclass(frozen=True, slots=True)
class SetState:
    state: QueryState


Action: TypeAlias = (
    Fetch | Success | DataChanged | Error | Failed | Pause | Continue | Invalidate | Cancelled | SetState
)


def reduce(state: QueryState, action: Action) -> QueryState:
    """The next state. Pure: no clock, no I/O."""
    match action:
        case Fetch(paused=paused, meta=meta):
            return replace(
                state,
                fetch_failure_count=0,
                fetch_failure_reason=None,
                fetch_meta=meta,
                fetch_status="paused" if paused else "fetching",
                error=None if not state.has_data else state.error,
                status="pending" if not state.has_data and state.status != "success" else state.status,
            )
        case Success(data=data, updated_at=at, manual=manual):
            return replace(
                state,
                data=data,
                data_update_count=state.data_update_count + 1,
                data_updated_at=at,
                error=None,
                is_invalidated=False,
                status="success",
                fetch_status=state.fetch_status if manual else "idle",
                fetch_failure_count=state.fetch_failure_count if manual else 0,
                fetch_failure_reason=state.fetch_failure_reason if manual else None,
            )
        case DataChanged(data=data):
            has = data is not MISSING
            status: Status = "success" if has and state.status == "pending" else state.status
            if not has and state.status == "success":
                status = "pending"
            return replace(state, data=data, data_update_count=state.data_update_count + 1, status=status)
        case Error(error=err, at=at):
            return replace(
                state,
                error=err,
                error_update_count=state.error_update_count + 1,
                error_updated_at=at,
                fetch_failure_count=state.fetch_failure_count + 1,
                fetch_failure_reason=err,
                fetch_status="idle",
                status="error",
                is_invalidated=True,  # as TanStack: data that failed to refresh is stale
            )
        case Failed(failure_count=n, error=err):
            return replace(state, fetch_failure_count=n, fetch_failure_reason=err)
        case Pause():
            return replace(state, fetch_status="paused")
        case Continue():
            return replace(state, fetch_status="fetching")
        case Invalidate():
            return replace(state, is_invalidated=True)
        case Cancelled(revert_to=prev):
            if prev is not None:
                return replace(prev, data=state.data, fetch_status="idle")
            return replace(state, fetch_status="idle")
        case SetState(state=new):
            return new
    raise TypeError(f"unknown action {action!r}")  # pragma: no cover
