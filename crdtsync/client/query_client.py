"""QueryClient: the facade that composes the query cache, the mutation cache, the entity
store and the optimistic overlay over one replica, as TanStack's ``queryClient.ts`` does.

Typical use::

    client = QueryClient()
    todos = await client.fetch_query(("todos",), fetch_todos, stale_time=30)
    observer = client.observe(("todos", 5), fetch_todo, select=lambda t: t["title"])
    unsubscribe = observer.subscribe(print)
    await client.invalidate_queries(("todos",))

Mutations::

    client.set_mutation_defaults(("todos", "update"), mutation_fn=put_todo, optimistic=rename)
    m = client.mutate({"id": 5, "title": "milk"}, mutation_key=("todos", "update"))
    data = await m.result()                      # or: await client.mutate_async(...)
    client.is_mutating(("todos",))               # pending mutations under a key prefix
    client.use_outbox("outbox.sqlite")           # durable: survives kill -9
    await client.resume_paused_mutations()       # after a restart, or resumes on reconnect

Every option default (queries, mutations, conflict policies) is resolved by one
:class:`~crdtsync.client.defaults.Defaults`. Times are in seconds. The data of every query
lives in ``client.replica`` (pycrdt documents), so ``get_query_data`` also sees what peers and
other processes wrote for a key, and removing a query from the cache drops its metadata and
timers, not the shared document data.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from typing import Any, Literal

from ..clock import Clock, SystemClock
from ..core.managers import FocusManager, OnlineManager
from ..core.network import NetworkMode
from ..core.notify import NotifyManager
from ..errors import MutationError
from ..keys import QueryKey
from ..mutations.cache import MutationCache
from ..mutations.conflicts import ConflictPolicy
from ..mutations.env import MutationEnv
from ..mutations.events import ConflictDetected
from ..mutations.filters import MutationFilters, as_mutation_filters
from ..mutations.mutation import Mutation
from ..mutations.observer import MutationObserver
from ..mutations.options import Callbacks
from ..mutations.outbox import Outbox, Synchronous
from ..mutations.overlay import Leaf, Overlay
from ..normalize.store import EntityStore
from ..origins import LOCAL
from ..query.filters import QueryFilters, as_filters
from ..query.key_factory import Cascades
from ..query.observer import QueryObserver
from ..query.options import InfiniteOptions, ObserverOptions, QueryFn, QueryOptions, resolve_stale_time
from ..query.query import Query, swallow
from ..query.query_cache import QueryCache
from ..query.state import Invalidate, QueryState
from ..replica import Replica
from ..values import MISSING
from .defaults import Defaults
from .fetch_writer import RebasingFetchWriter

RefetchType = Literal["active", "inactive", "all", "none"]


class QueryClient:
    """Create one per app (or per test). ``mount()`` connects it to focus and online events.

    ``notify_tick`` (seconds) coalesces observer notifications: each observer is told at most
    once per tick, with its latest result (None: at once, or at the end of a ``batch()``).
    """

    def __init__(
        self,
        *,
        replica: Replica | None = None,
        query_cache: QueryCache | None = None,
        clock: Clock | None = None,
        online_manager: OnlineManager | None = None,
        focus_manager: FocusManager | None = None,
        cascades: Cascades | None = None,
        default_options: dict[str, Any] | None = None,
        rng: random.Random | None = None,
        notify_tick: float | None = None,
    ):
        self.replica = replica if replica is not None else Replica()
        self.query_cache = query_cache if query_cache is not None else QueryCache()
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.online_manager = online_manager if online_manager is not None else OnlineManager()
        self.focus_manager = focus_manager if focus_manager is not None else FocusManager()
        self.notify_manager = NotifyManager(tick=notify_tick, clock=self.clock)
        self.cascades = cascades if cascades is not None else Cascades()
        self.random = rng if rng is not None else random.Random()
        self.entities = EntityStore(self.replica, self.clock)
        self.defaults = Defaults(default_options)
        self.overlay = Overlay(self.replica, policy_for=self._policy_for,
                               emit=lambda conflict: self.mutation_cache.emit(ConflictDetected(conflict)),
                               on_rebase=lambda leaves: self.mutation_cache.book.refresh_bases(leaves))
        self.mutation_cache = MutationCache(MutationEnv(
            client=self, replica=self.replica, overlay=self.overlay, clock=self.clock, rng=self.random,
            notify_manager=self.notify_manager, online_manager=self.online_manager,
            is_normalized=self._is_normalized))
        self.query_cache.set_fetch_writer(RebasingFetchWriter(self.overlay, self.entities))
        self._tasks: set[asyncio.Task[Any]] = set()
        self._unsubscribers: list[Callable[[], None]] = []
        self._mount_count = 0

    # -- lifecycle ---------------------------------------------------------------------------
    def mount(self) -> None:
        """Refetch on focus and reconnect (per the observers' options) from now on. Mounts
        count, as TanStack's: the client stays mounted until each one is undone by ``unmount``."""
        self._mount_count += 1
        if self._unsubscribers:
            return
        self._unsubscribers.append(self.focus_manager.subscribe(self._on_focus))
        self._unsubscribers.append(self.online_manager.subscribe(self._on_online))

    def unmount(self) -> None:
        self._mount_count = max(0, self._mount_count - 1)
        if self._mount_count:
            return
        for unsub in self._unsubscribers:
            unsub()
        self._unsubscribers.clear()

    async def __aenter__(self) -> QueryClient:
        self.mount()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.unmount()
        await self.close()

    async def close(self) -> None:
        """Stop mutations (pending ones stay in the outbox), cancel background fetches and drop
        every query."""
        await self.mutation_cache.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self.query_cache.clear()

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(swallow)
        return task

    def _on_focus(self, focused: bool) -> None:
        if focused:
            self._refetch_observed("focus")

    def _on_online(self, online: bool) -> None:
        if online and any(m.state.is_paused for m in self.mutation_cache.get_all()):
            self._spawn(self._refetch_after_mutations())  # as TanStack: mutations first
        elif online:
            self._refetch_observed("reconnect")

    async def _refetch_after_mutations(self) -> None:
        await self.resume_paused_mutations()
        self._refetch_observed("reconnect")

    def _refetch_observed(self, event: str) -> None:
        for query in self.query_cache.get_all():
            if query.is_fetching():
                continue
            if any(o._should_fetch_on(event) for o in query.observers):
                query._start_background_fetch()

    # -- options -----------------------------------------------------------------------------
    def set_query_defaults(self, query_key: Sequence[Any], **options: Any) -> None:
        """Defaults for every query under ``query_key`` (later calls win for the same prefix)."""
        self.defaults.set_query_defaults(query_key, options)

    def get_query_defaults(self, query_key: Sequence[Any]) -> dict[str, Any]:
        return self.defaults.get_query_defaults(query_key)

    def set_mutation_defaults(self, mutation_key: Sequence[Any], **options: Any) -> None:
        """Options for every mutation whose key starts with ``mutation_key`` (later calls win).
        Register ``mutation_fn`` (and ``optimistic``) here so restored mutations can resume."""
        self.defaults.set_mutation_defaults(mutation_key, options)

    def get_mutation_defaults(self, mutation_key: Sequence[Any]) -> dict[str, Any]:
        return self.defaults.get_mutation_defaults(mutation_key)

    def set_conflict_policy(self, query_key: Sequence[Any], policy: ConflictPolicy) -> None:
        """Conflict policy for fields under ``query_key`` (a mutation's own policy wins)."""
        self.defaults.set_conflict_policy(query_key, policy)

    def _policy_for(self, mutation_id: int, key: QueryKey) -> ConflictPolicy:
        m = self.mutation_cache.get(mutation_id)
        return self.defaults.conflict_policy(key, m.options.conflict_policy if m is not None else None)

    def _split(self, query_key: Sequence[Any], query_fn: QueryFn | None,
               overrides: dict[str, Any]) -> tuple[QueryOptions, ObserverOptions]:
        return self.defaults.query_options(query_key, query_fn, overrides)

    def _is_normalized(self, key: Any) -> bool:
        query = self.query_cache.find(key)
        return query is not None and query.options.normalize is not None

    def _build(self, query_key: Sequence[Any], query_fn: QueryFn | None, overrides: dict[str, Any]) -> Query:
        options, _ = self._split(query_key, query_fn, overrides)
        query = self.query_cache.build(self, options)
        if query.options is not options and (query_fn is not None or overrides):
            if options.query_fn is None and query.options.query_fn is not None:
                options = dataclasses.replace(options, query_fn=query.options.query_fn)
            query.set_options(options)
        return query

    # -- reading and writing -----------------------------------------------------------------
    async def fetch_query(self, query_key: Sequence[Any], query_fn: QueryFn | None = None, **options: Any) -> Any:
        """The data of ``query_key``: cached when fresh (per ``stale_time``), fetched otherwise.
        Raises the query function's error after retries (default retry here: 0, as TanStack)."""
        options.setdefault("retry", 0)
        query = self._build(query_key, query_fn, options)
        if query.state.has_data and not query.is_stale_by_time(resolve_stale_time(query.options.stale_time, query)):
            return query.state.data
        return await query.fetch()

    async def prefetch_query(self, query_key: Sequence[Any], query_fn: QueryFn | None = None, **options: Any) -> None:
        """Like ``fetch_query`` but never raises and returns nothing."""
        with contextlib.suppress(Exception):
            await self.fetch_query(query_key, query_fn, **options)

    async def ensure_query_data(self, query_key: Sequence[Any], query_fn: QueryFn | None = None, *,
                                revalidate_if_stale: bool = False, **options: Any) -> Any:
        """Cached data if any (refetched in the background when stale and asked to), else fetch."""
        query = self._build(query_key, query_fn, options)  # writes initial_data, if any
        data = self.replica.read(query_key)
        if data is MISSING:
            return await self.fetch_query(query_key, query_fn, **options)
        if revalidate_if_stale and query.is_stale_by_time(resolve_stale_time(query.options.stale_time, query)):
            query._start_background_fetch()
        return query.state.data if query.state.has_data else data

    def get_query_data(self, query_key: Sequence[Any]) -> Any:
        """The data stored for ``query_key`` (by anyone: this process, a peer, a restore), or None."""
        query = self.query_cache.find(query_key)
        if query is None and self.get_query_defaults(query_key).get("normalize") is not None:
            query = self._build(query_key, None, {})  # a normalized key reads through its shape
        if query is not None:
            if self.replica.flushing:  # a watcher that runs before the query's own may ask mid-flush
                query.refresh()
            return query.state.data if query.state.has_data else None
        data = self.replica.read(query_key)
        return None if data is MISSING else data

    def get_query_state(self, query_key: Sequence[Any]) -> QueryState | None:
        query = self.query_cache.find(query_key)
        return query.state if query is not None else None

    def set_query_data(self, query_key: Sequence[Any], value: Any, *, updated_at: float | None = None) -> Any:
        """Write data for ``query_key`` (a diff: only changed leaves become a CRDT update).

        ``value`` may be a function of the current data (None when there is none); a function
        returning ``None`` changes nothing, as in TanStack. Returns the stored data.
        """
        if callable(value):
            current = self.get_query_data(query_key)
            new = value(current)
            if new is None:
                return current
        else:
            new = value
        query = self._build(query_key, None, {})
        return query.set_data(new, updated_at=updated_at, manual=True, origin=LOCAL)

    def set_queries_data(self, filters: QueryFilters | Sequence[Any] | None, updater: Callable[[Any], Any],
                         **kwargs: Any) -> list[tuple[QueryKey, Any]]:
        """Apply ``updater`` to every matching query's data, in one batch."""
        out: list[tuple[QueryKey, Any]] = []
        with self.batch():
            for query in self.query_cache.find_all(filters, **kwargs):
                out.append((query.query_key, self.set_query_data(query.query_key, updater)))
        return out

    def get_queries_data(self, filters: QueryFilters | Sequence[Any] | None = None,
                         **kwargs: Any) -> list[tuple[QueryKey, Any]]:
        return [(q.query_key, q.state.data if q.state.has_data else None)
                for q in self.query_cache.find_all(filters, **kwargs)]

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Writes inside become one transaction per document and each observer is notified once."""
        with self.notify_manager.batch(), self.replica.batch(origin=LOCAL):
            yield

    # -- invalidation and refetching ---------------------------------------------------------
    async def invalidate_queries(self, filters: QueryFilters | Sequence[Any] | None = None, *,
                                 refetch_type: RefetchType = "active", **kwargs: Any) -> None:
        """Mark matching queries (and those their key cascades to) stale, then refetch the ones
        of ``refetch_type`` (``active`` by default; ``none`` refetches nothing)."""
        f = as_filters(filters, **kwargs)
        targets: dict[str, Query] = {}
        prefixes = self.cascades.expand(f.query_key) if f.query_key is not None else [None]
        for i, prefix in enumerate(prefixes):
            sub = f if i == 0 else dataclasses.replace(f, query_key=prefix, exact=False)
            for q in self.query_cache.find_all(sub):
                targets[q.query_hash] = q
        with self.notify_manager.batch():
            for q in targets.values():
                q.dispatch(Invalidate())
        if refetch_type == "none":
            return
        chosen = [q for q in targets.values() if not q.is_disabled() and (refetch_type == "all"
                  or (refetch_type == "active") == q.is_active())]
        await self._refetch(chosen, throw_on_error=False)

    async def refetch_queries(self, filters: QueryFilters | Sequence[Any] | None = None, *,
                              throw_on_error: bool = False, **kwargs: Any) -> None:
        """Refetch matching queries that are not disabled; errors stay in their state unless
        ``throw_on_error``. Fetches that pause (offline) run on but are not waited for."""
        queries = [q for q in self.query_cache.find_all(filters, **kwargs) if not q.is_disabled()]
        await self._refetch(queries, throw_on_error=throw_on_error)

    async def _refetch(self, queries: list[Query], *, throw_on_error: bool) -> None:
        runnable = [q for q in queries if q.options.query_fn is not None]
        offline = not self.online_manager.is_online()
        waited = []
        for q in runnable:  # as TanStack, a fetch that pauses (offline) is not waited for
            if offline and q.options.network_mode is NetworkMode.ONLINE:
                self._spawn(q.fetch(cancel_refetch=True))
            else:
                waited.append(q.fetch(cancel_refetch=True))
        results = await asyncio.gather(*waited, return_exceptions=True)
        if throw_on_error:
            for r in results:
                if isinstance(r, BaseException):
                    raise r

    async def cancel_queries(self, filters: QueryFilters | Sequence[Any] | None = None, *, revert: bool = True,
                             **kwargs: Any) -> None:
        """Cancel matching fetches; data stays as it was. With ``revert`` (the default) the metadata
        goes back and a pending fetch returns that data (raises when there is none); without it
        the query is in error with a ``QueryCancelledError``, as in TanStack."""
        for q in self.query_cache.find_all(filters, **kwargs):
            q.cancel(revert=revert)
        await asyncio.sleep(0)

    async def reset_queries(self, filters: QueryFilters | Sequence[Any] | None = None, **kwargs: Any) -> None:
        """Reset matching queries' metadata to "never fetched" (stale) and refetch the active ones.

        The shared document data is not deleted (peers share it); ``initial_data`` is written
        again when configured.
        """
        queries = self.query_cache.find_all(filters, **kwargs)
        with self.notify_manager.batch():
            for q in queries:
                q.cancel(silent=True)
                q.dispatch_reset()
        await self._refetch([q for q in queries if q.is_active()], throw_on_error=False)

    def remove_queries(self, filters: QueryFilters | Sequence[Any] | None = None, **kwargs: Any) -> None:
        """Drop matching queries from the cache (metadata and timers; document data stays)."""
        for q in self.query_cache.find_all(filters, **kwargs):
            self.query_cache.remove(q)

    def clear(self) -> None:
        self.query_cache.clear()

    def is_fetching(self, filters: QueryFilters | Sequence[Any] | None = None, **kwargs: Any) -> int:
        kwargs.setdefault("fetch_status", "fetching")
        return len(self.query_cache.find_all(filters, **kwargs))

    # -- observers ---------------------------------------------------------------------------
    def observe(self, query_key: Sequence[Any], query_fn: QueryFn | None = None, **options: Any) -> QueryObserver:
        """A :class:`QueryObserver` for ``query_key``; it starts work when first subscribed."""
        q_opts, o_opts = self._split(query_key, query_fn, options)
        query = self.query_cache.build(self, q_opts)
        if query.options is not q_opts and (query_fn is not None or options):
            query.set_options(q_opts)
        return QueryObserver(self, query.options, o_opts)

    # -- infinite queries --------------------------------------------------------------------
    async def fetch_infinite_query(self, query_key: Sequence[Any], query_fn: QueryFn | None = None, *,
                                   initial_page_param: Any,
                                   get_next_page_param: Callable[..., Any],
                                   get_previous_page_param: Callable[..., Any] | None = None,
                                   max_pages: int | None = None, pages: int | None = None,
                                   **options: Any) -> Any:
        """Fetch an infinite query (``{"pages": [...], "page_params": [...]}``); ``pages``
        fetches that many pages forward on the first load."""
        options["infinite"] = InfiniteOptions(initial_page_param, get_next_page_param,
                                              get_previous_page_param, max_pages)
        data = await self.fetch_query(query_key, query_fn, **options)
        query = self.query_cache.find(query_key)
        assert query is not None
        while pages is not None and len(data["pages"]) < pages:
            before = len(data["pages"])
            data = await query.fetch(meta={"direction": "forward"})
            if len(data["pages"]) == before:
                break
        return data

    async def fetch_next_page(self, query_key: Sequence[Any]) -> Any:
        """Append the next page of an infinite query already in the cache."""
        return await self._page(query_key, "forward")

    async def fetch_previous_page(self, query_key: Sequence[Any]) -> Any:
        """Prepend the previous page of an infinite query already in the cache."""
        return await self._page(query_key, "backward")

    async def _page(self, query_key: Sequence[Any], direction: str) -> Any:
        query = self.query_cache.find(query_key)
        if query is None or query.options.infinite is None:
            raise LookupError(f"{tuple(query_key)!r} is not an infinite query in the cache")
        return await query.fetch(meta={"direction": direction})

    # -- mutations ---------------------------------------------------------------------------
    def mutate(self, variables: Any = None, **options: Any) -> Mutation:
        """Start a mutation and return it at once (its optimistic edit is already visible).

        Options: see :class:`~crdtsync.mutations.options.MutationOptions`. Await
        ``mutation.result()`` for the outcome, or use :meth:`mutate_async`.
        """
        return self.build_mutation(variables, options)

    async def mutate_async(self, variables: Any = None, **options: Any) -> Any:
        """Run a mutation and return its data; raises its error (after the rollback)."""
        return await self.mutate(variables, **options).result()

    def build_mutation(self, variables: Any, options: dict[str, Any], *, extra: Callbacks | None = None,
                       restored_key: str | None = None, store_restored: bool = False,
                       bases: Mapping[Leaf, Any] | None = None) -> Mutation:
        """Resolve ``options`` against the defaults and start the mutation in the mutation cache
        (see :meth:`MutationCache.build <crdtsync.mutations.cache.MutationCache.build>` for the
        restore arguments; ``extra``: callbacks that run after the others)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            raise MutationError("mutate() needs a running asyncio event loop") from None
        opts, callbacks = self.defaults.mutation_options(options, extra)
        return self.mutation_cache.build(opts, callbacks, variables, restored_key=restored_key,
                                         store_restored=store_restored, bases=bases)

    def observe_mutation(self, **options: Any) -> MutationObserver:
        """A :class:`~crdtsync.mutations.observer.MutationObserver` (TanStack's useMutation)."""
        return MutationObserver(self, **options)

    def is_mutating(self, filters: MutationFilters | Sequence[Any] | None = None, **kwargs: Any) -> int:
        """How many matching mutations are pending (paused ones included)."""
        f = dataclasses.replace(as_mutation_filters(filters, **kwargs), status="pending")
        return len(self.mutation_cache.find_all(f))

    def mutation_state(self, filters: MutationFilters | Sequence[Any] | None = None, *,
                       select: Callable[[Mutation], Any] | None = None, **kwargs: Any) -> list[Any]:
        """The state of every matching mutation (or ``select(mutation)``), oldest first."""
        found = self.mutation_cache.find_all(filters, **kwargs)
        return [select(m) if select is not None else m.state for m in found]

    def use_outbox(self, outbox: Outbox | str, *, synchronous: Synchronous = "NORMAL") -> list[Mutation]:
        """Persist mutations (that have a ``mutation_key``) in a SQLite outbox at ``outbox``.
        Mutations found there from a previous run are recreated, paused, with their optimistic
        edits replayed; call :meth:`resume_paused_mutations` to send them, in order."""
        restored = []
        for rec, bases in self.mutation_cache.use_outbox(outbox, synchronous=synchronous):
            opts: dict[str, Any] = {"mutation_key": rec.mutation_key}
            if rec.scope is not None:
                opts["scope"] = rec.scope
            restored.append(self.build_mutation(rec.variables, opts, restored_key=rec.idempotency_key, bases=bases))
        return restored

    async def resume_paused_mutations(self) -> None:
        """Continue paused mutations one at a time, oldest first (also runs on reconnect)."""
        await self.mutation_cache.resume_paused_mutations()

    async def close_mutations(self) -> None:
        """Stop running mutations without settling them and close the outbox (rows are kept)."""
        await self.mutation_cache.close()
