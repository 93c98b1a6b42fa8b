"""Mutation options, the context a mutation function receives, and callback types.

Options resolve in this order: the built-in defaults below, then every
``set_mutation_defaults(prefix, ...)`` whose prefix matches the mutation key (later calls
win), then the arguments of ``mutate``. Lifecycle callbacks are the exception: the defaults'
``on_success`` / ``on_error`` / ``on_settled`` run first and the call's run after them (both);
``on_mutate`` is the call's when given, else the defaults'.

Callbacks may be plain functions or coroutines. Their signatures follow TanStack:
``on_mutate(variables) -> context``, ``on_success(data, variables, context)``,
``on_error(error, variables, context)``, ``on_settled(data, error, variables, context)``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, TypeAlias

from ..core.network import NetworkMode
from ..core.retry import RetryDelay, RetryOption
from ..keys import QueryKey
from .conflicts import ConflictPolicy, Resolver
from .optimistic import OptimisticFn

if TYPE_CHECKING:
    from ..client import QueryClient


@dataclass(frozen=True, slots=True)
class MutationFunctionContext:
    """What a ``mutation_fn(variables, ctx)`` receives.

    Send ``idempotency_key`` to the server (a header, say): it is stable across retries,
    resumes and restarts, so the server can apply each mutation once. ``attempt`` counts
    calls (1 on the first). ``cancelled()`` turns true once ``Mutation.cancel()`` was called.
    """

    client: QueryClient
    mutation_id: int
    idempotency_key: str
    mutation_key: QueryKey | None
    meta: dict[str, Any] | None
    attempt: int
    cancelled: Callable[[], bool]


MutationFn: TypeAlias = Callable[[Any, MutationFunctionContext], Awaitable[Any]]
OnMutate: TypeAlias = Callable[[Any], Any]
OnSuccess: TypeAlias = Callable[[Any, Any, Any], Any]
OnError: TypeAlias = Callable[[BaseException, Any, Any], Any]
OnSettled: TypeAlias = Callable[[Any, "BaseException | None", Any, Any], Any]
IsConflict: TypeAlias = Callable[[BaseException], bool]


@dataclass(frozen=True)
class MutationOptions:
    """Everything a mutation can be told. ``None`` means "not set" for the optional ones."""

    mutation_key: QueryKey | None = None
    mutation_fn: MutationFn | None = None
    optimistic: OptimisticFn | None = None
    on_mutate: OnMutate | None = None
    on_success: OnSuccess | None = None
    on_error: OnError | None = None
    on_settled: OnSettled | None = None
    scope: str | None = None
    network_mode: NetworkMode = NetworkMode.ONLINE
    retry: RetryOption = 0
    retry_delay: RetryDelay | None = None
    gc_time: float = 300.0
    conflict_policy: ConflictPolicy | None = None
    is_conflict: IsConflict | None = None
    resolve_conflict: Resolver | None = None
    max_conflict_retries: int = 3
    durable: bool = True
    meta: dict[str, Any] | None = field(default=None)


OPTION_NAMES = frozenset(f.name for f in fields(MutationOptions))
CALLBACK_NAMES = ("on_success", "on_error", "on_settled")


def check_names(options: dict[str, Any]) -> None:
    unknown = set(options) - OPTION_NAMES
    if unknown:
        raise TypeError(f"unknown mutation option(s): {', '.join(sorted(unknown))}")
    if "max_conflict_retries" in options and (not isinstance(options["max_conflict_retries"], int)
                                              or options["max_conflict_retries"] < 0):
        raise ValueError("max_conflict_retries must be an int >= 0")
    if "gc_time" in options and float(options["gc_time"]) < 0:
        raise ValueError("gc_time must be >= 0")


@dataclass(frozen=True)
class Callbacks:
    """The lifecycle callbacks of one mutation, defaults first."""

    on_mutate: OnMutate | None = None
    on_success: tuple[OnSuccess, ...] = ()
    on_error: tuple[OnError, ...] = ()
    on_settled: tuple[OnSettled, ...] = ()
