"""Mutation methods of :class:`~crdtsync.cache.client.QueryClient` (mixed into it).

Everything here appears on the client::

    client.set_mutation_defaults(("todos", "update"), mutation_fn=put_todo, optimistic=rename)
    m = client.mutate({"id": 5, "title": "milk"}, mutation_key=("todos", "update"))
    data = await m.result()                      # or: await client.mutate_async(...)
    client.is_mutating(("todos",))               # pending mutations under a key prefix
    client.use_outbox("outbox.sqlite")           # durable: survives kill -9
    await client.resume_paused_mutations()       # after a restart, or resumes on reconnect
    await client.close_mutations()               # on shutdown (outbox rows are kept)

The state lives in a :class:`~crdtsync.mutations.runtime.MutationRuntime` created on first use.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from ..cache.client import QueryClient
    from ..cache.query import Query
    from .cache import MutationCache
    from .conflicts import ConflictPolicy
    from .filters import MutationFilters
    from .mutation import Mutation
    from .observer import MutationObserver
    from .outbox import Outbox, Synchronous
    from .runtime import MutationRuntime

_ATTR = "_crdtsync_mutation_runtime"


class MutationsMixin:
    """Mutations, optimistic edits, conflicts and the outbox, on the client."""

    # -- runtime -----------------------------------------------------------------------------
    @property
    def mutations(self) -> MutationRuntime:
        """The mutation runtime (created on first use)."""
        rt = self.__dict__.get(_ATTR)
        if rt is None:
            from .runtime import MutationRuntime

            rt = MutationRuntime(cast("QueryClient", self))
            self.__dict__[_ATTR] = rt
        return cast("MutationRuntime", rt)

    @property
    def mutation_cache(self) -> MutationCache:
        return self.mutations.cache

    # -- the fetch hook ----------------------------------------------------------------------
    def write_fetched(self, query: Query, data: Any) -> None:
        """Write a query function's result into the document (origin FETCH), with every field
        that has a pending optimistic edit keeping the user's value (rebase): the edit never
        flickers, and the fetched value is what a rollback goes back to. Normalized queries
        (their entities are written by the entity store) are rebased in the same transaction."""
        from ..origins import FETCH

        rt = self.__dict__.get(_ATTR)
        if rt is None or not rt.overlay.pending_leaves():
            query.write_data(data, origin=FETCH)
        elif query.options.normalize is None:
            query.write_data(rt.overlay.rebase_fetched(query.route, data), origin=FETCH)
        else:
            store = cast("QueryClient", self).entities
            with store.capturing() as fetched, rt.overlay.restoring(fetched):
                query.write_data(data, origin=FETCH)

    # -- mutating ----------------------------------------------------------------------------
    def mutate(self, variables: Any = None, **options: Any) -> Mutation:
        """Start a mutation and return it at once (its optimistic edit is already visible).

        Options: see :class:`~crdtsync.mutations.options.MutationOptions`. Await
        ``mutation.result()`` for the outcome, or use :meth:`mutate_async`.
        """
        return self.mutations.build(variables, options)

    async def mutate_async(self, variables: Any = None, **options: Any) -> Any:
        """Run a mutation and return its data; raises its error (after the rollback)."""
        return await self.mutate(variables, **options).result()

    def set_mutation_defaults(self, mutation_key: Sequence[Any], **options: Any) -> None:
        """Options for every mutation whose key starts with ``mutation_key`` (later calls win).
        Register ``mutation_fn`` (and ``optimistic``) here so restored mutations can resume."""
        self.mutations.set_defaults(mutation_key, options)

    def get_mutation_defaults(self, mutation_key: Sequence[Any]) -> dict[str, Any]:
        return self.mutations.get_defaults(mutation_key)

    def set_conflict_policy(self, query_key: Sequence[Any], policy: ConflictPolicy) -> None:
        """Conflict policy for fields under ``query_key`` (a mutation's own policy wins)."""
        self.mutations.set_policy(query_key, policy)

    def observe_mutation(self, **options: Any) -> MutationObserver:
        """A :class:`~crdtsync.mutations.observer.MutationObserver` (TanStack's useMutation)."""
        from .observer import MutationObserver

        return MutationObserver(cast("QueryClient", self), **options)

    # -- looking -----------------------------------------------------------------------------
    def is_mutating(self, filters: MutationFilters | Sequence[Any] | None = None, **kwargs: Any) -> int:
        """How many matching mutations are pending (paused ones included)."""
        return self.mutations.count_pending(filters, kwargs)

    def mutation_state(self, filters: MutationFilters | Sequence[Any] | None = None, *,
                       select: Callable[[Mutation], Any] | None = None, **kwargs: Any) -> list[Any]:
        """The state of every matching mutation (or ``select(mutation)``), oldest first."""
        found = self.mutations.cache.find_all(filters, **kwargs)
        return [select(m) if select is not None else m.state for m in found]

    # -- offline -----------------------------------------------------------------------------
    def use_outbox(self, outbox: Outbox | str, *, synchronous: Synchronous = "NORMAL") -> list[Mutation]:
        """Persist mutations (that have a ``mutation_key``) in a SQLite outbox at ``outbox``.
        Mutations found there from a previous run are recreated, paused, with their optimistic
        edits replayed; call :meth:`resume_paused_mutations` to send them, in order."""
        return self.mutations.use_outbox(outbox, synchronous=synchronous)

    async def resume_paused_mutations(self) -> None:
        """Continue paused mutations one at a time, oldest first (also runs on reconnect)."""
        await self.mutations.resume_paused()

    async def close_mutations(self) -> None:
        """Stop running mutations without settling them and close the outbox (rows are kept)."""
        rt = self.__dict__.get(_ATTR)
        if rt is not None:
            await rt.close()
