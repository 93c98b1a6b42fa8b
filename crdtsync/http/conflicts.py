"""Resolving the version conflicts of HTTP writes (409 and 412).

A mutation function from :meth:`HttpClient.mutation <crdtsync.http.HttpClient.mutation>`
raises :class:`~crdtsync.http.HTTPConflictError`, a ``VersionConflictError`` carrying the
server's current value and version. The mutation layer then calls the mutation's
``resolve_conflict`` with a :class:`~crdtsync.mutations.conflicts.VersionConflict` and emits
``VersionConflictDetected``; new variables retry the write (the optimistic edit is applied
again with them), ``None`` gives up (the mutation fails with ``ConflictError`` and rolls back,
so the next fetch shows the server's value).

:func:`rebase_on_server` builds the usual resolver: send our change again on top of the
server's version, optionally merged with the server's value first.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..mutations.conflicts import Resolver, VersionConflict

Merge = Callable[[Mapping[str, Any], Any], "Mapping[str, Any] | None"]


def rebase_on_server(*, version_field: str = "version", merge: Merge | None = None) -> Resolver:
    """A ``resolve_conflict`` for mapping variables whose ``version_field`` is sent as
    ``If-Match`` (``api.mutation(..., if_match="version")``).

    It returns the variables with the server's version, so the write is retried as a change
    of the server's current value: our fields win, the others stay as the server has them.
    ``merge(variables, server_value)`` may return other variables first (or ``None`` to give
    up, letting the server's value stand). It gives up when the server sent no version or the
    entity is gone.
    """

    def resolve(conflict: VersionConflict) -> Any:
        variables = conflict.variables
        if not isinstance(variables, Mapping) or conflict.server_version is None or conflict.server_value is None:
            return None
        rebased = merge(variables, conflict.server_value) if merge is not None else variables
        if rebased is None:
            return None
        return {**rebased, version_field: conflict.server_version}

    return resolve
