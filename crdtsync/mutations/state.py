"""Mutation state and the pure reducer that is its only way to change.

Rules (TanStack Query v5's, in snake_case):

- ``status`` is ``idle`` before the mutation runs, ``pending`` from ``mutate`` until it settles,
  then ``success`` or ``error``. ``reset`` (observers only) goes back to ``idle``.
- *Paused* is ``pending`` with ``is_paused`` set: the mutation waits for the network (network
  mode ``online`` while offline), for an earlier mutation of its scope, or was restored from
  the outbox and waits for ``resume_paused_mutations()``. :attr:`MutationState.phase` folds the two into one of
  ``idle``, ``pending``, ``paused``, ``success``, ``error``.
- ``failure_count`` / ``failure_reason`` count failed attempts (retries and version conflicts);
  they are cleared by a success.
- ``variables`` can change while pending: a version conflict resolved by the resolver retries
  with the resolved variables.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal, TypeAlias

MutationStatus = Literal["idle", "pending", "success", "error"]
MutationPhase = Literal["idle", "pending", "paused", "success", "error"]


class StatusFlags:
    """``phase`` and the ``is_*`` flags, derived from ``status`` and ``is_paused``: shared by
    :class:`MutationState` and the observer's result, which carry those two fields."""

    __slots__ = ()
    status: MutationStatus
    is_paused: bool

    @property
    def phase(self) -> MutationPhase:
        return "paused" if self.status == "pending" and self.is_paused else self.status

    @property
    def is_idle(self) -> bool:
        return self.status == "idle"

    @property
    def is_pending(self) -> bool:
        return self.status == "pending"

    @property
    def is_success(self) -> bool:
        return self.status == "success"

    @property
    def is_error(self) -> bool:
        return self.status == "error"

    @property
    def is_settled(self) -> bool:
        return self.status in ("success", "error")


@dataclass(frozen=True, slots=True)
class MutationState(StatusFlags):
    status: MutationStatus = "idle"
    variables: Any = None
    context: Any = None
    data: Any = None
    error: BaseException | None = None
    failure_count: int = 0
    failure_reason: BaseException | None = None
    is_paused: bool = False
    submitted_at: float = 0.0


# -- actions ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Pending:
    variables: Any
    paused: bool
    at: float


@dataclass(frozen=True, slots=True)
class SetContext:
    context: Any


@dataclass(frozen=True, slots=True)
class Pause:
    pass


@dataclass(frozen=True, slots=True)
class Continue:
    pass


@dataclass(frozen=True, slots=True)
class Failed:
    failure_count: int
    error: BaseException


@dataclass(frozen=True, slots=True)
class Resolved:
    """A version conflict was resolved: retry with ``variables``."""

    variables: Any


@dataclass(frozen=True, slots=True)
class Success:
    data: Any


@dataclass(frozen=True, slots=True)
class Error:
    error: BaseException


@dataclass(frozen=True, slots=True)
class Reset:
    pass


MutationAction: TypeAlias = Pending | SetContext | Pause | Continue | Failed | Resolved | Success | Error | Reset


def reduce(state: MutationState, action: MutationAction) -> MutationState:
    """The next state. Pure: no clock, no I/O."""
    match action:
        case Pending(variables=variables, paused=paused, at=at):
            return MutationState(status="pending", variables=variables, is_paused=paused, submitted_at=at)
        case SetContext(context=context):
            return replace(state, context=context)
        case Pause():
            return replace(state, is_paused=True)
        case Continue():
            return replace(state, is_paused=False)
        case Failed(failure_count=n, error=err):
            return replace(state, failure_count=n, failure_reason=err)
        case Resolved(variables=variables):
            return replace(state, variables=variables)
        case Success(data=data):
            return replace(state, status="success", data=data, error=None, failure_count=0,
                           failure_reason=None, is_paused=False)
        case Error(error=err):
            return replace(state, status="error", error=err, failure_reason=err,
                           failure_count=state.failure_count + 1, is_paused=False)
        case Reset():
            return MutationState()
    raise AssertionError(f"unknown action {action!r}")  # pragma: no cover
