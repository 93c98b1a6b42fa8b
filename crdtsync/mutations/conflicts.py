"""Conflicts between an unsettled local edit and a concurrent change, and how to settle them.

Two kinds:

- **Field conflicts** (:class:`FieldConflict`): a field that a pending mutation edited
  optimistically is changed concurrently by a remote peer (origin REMOTE/RESTORE) or by the
  server (a fetch result, origin FETCH). The mutation cache emits a
  :class:`~crdtsync.mutations.events.ConflictDetected` event and applies the policy:

  ``"crdt"`` (default)
      remote change: the CRDT's deterministic merge stands (every replica shows the same);
      server change: the user's value stays on screen while the mutation is pending
      (rebase), and the server's value is what a rollback goes back to.
  ``"server_wins"``
      the incoming value shows at once; the mutation's edit of that field is dropped (its
      rollback will not touch the field).
  ``"client_wins"``
      the user's value is written again over the incoming one (at most
      ``max_client_rewrites`` times per field and mutation, so two peers that both insist
      cannot loop forever).
  a function ``merge(conflict) -> value``
      its result is written and becomes the mutation's value for that field.

  Set a policy per mutation (``conflict_policy=``) or per query key prefix
  (``client.set_conflict_policy(prefix, policy)``).

- **Version conflicts** (:class:`VersionConflict`): the server refuses a write because the
  version (or ETag) the client based it on is old, typically an HTTP 409 that the mutation
  function maps to :class:`~crdtsync.errors.VersionConflictError` (or any error the
  mutation's ``is_conflict`` predicate accepts). The mutation's ``resolve_conflict`` is
  called; it returns new variables to retry with, or ``None`` to give up (the mutation then
  fails with :class:`~crdtsync.errors.ConflictError` and rolls back).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from ..errors import ConflictError
from ..keys import QueryKey

ConflictSource = Literal["remote", "server", "local"]
NamedPolicy = Literal["crdt", "server_wins", "client_wins"]


@dataclass(frozen=True, slots=True)
class FieldConflict:
    """A field with an unsettled local edit changed concurrently.

    ``path`` is the field's path inside document ``doc_id``; ``key`` is the query key the
    mutation edited. ``base`` is the value before any pending edit (``MISSING`` when the field
    did not exist, ``None`` is a stored null). ``resolved`` is the value shown after the
    policy ran.
    """

    key: QueryKey
    doc_id: str
    path: tuple[str, ...]
    local: Any
    incoming: Any
    base: Any
    source: ConflictSource
    mutation_id: int
    policy: str
    resolved: Any = None


MergeFn: TypeAlias = Callable[[FieldConflict], Any]
ConflictPolicy: TypeAlias = "NamedPolicy | MergeFn"
NAMED_POLICIES: tuple[str, ...] = ("crdt", "server_wins", "client_wins")


def check_policy(policy: Any) -> None:
    """Raise ``ValueError`` unless ``policy`` is a known name or a callable."""
    if policy is None or callable(policy):
        return
    if policy not in NAMED_POLICIES:
        raise ValueError(f"conflict policy must be one of {NAMED_POLICIES} or a merge function, got {policy!r}")


def policy_name(policy: Any) -> str:
    return policy if isinstance(policy, str) else "merge"


@dataclass(frozen=True, slots=True)
class VersionConflict:
    """What ``resolve_conflict`` receives: the rejected variables and the server's side.

    ``server_value`` / ``server_version`` come from the error when it carries them (a
    :class:`~crdtsync.errors.VersionConflictError` does); ``attempt`` counts conflicts so far.
    """

    mutation_key: QueryKey | None
    variables: Any
    error: BaseException
    server_value: Any
    server_version: Any
    attempt: int


Resolver: TypeAlias = Callable[[VersionConflict], "Any | Awaitable[Any]"]


def default_is_conflict(error: BaseException) -> bool:
    """The default predicate: any :class:`~crdtsync.errors.ConflictError`."""
    return isinstance(error, ConflictError)


def version_conflict(mutation_key: QueryKey | None, variables: Any, error: BaseException,
                     attempt: int) -> VersionConflict:
    return VersionConflict(mutation_key, variables, error, getattr(error, "server_value", None),
                           getattr(error, "server_version", None), attempt)
