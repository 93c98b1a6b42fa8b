"""MutationCache: every mutation of a client, in creation order, with typed events; the order
of each scope, the resume of paused mutations and the outbox bookkeeping.

Subscribe with ``client.mutation_cache.subscribe(listener)``; the listener receives
:data:`~crdtsync.mutations.events.MutationCacheEvent` values (added, updated with the action,
removed, field conflicts, version conflicts). Settled mutations without observers are removed
after their ``gc_time``. A new mutation waits for the previous one of its ``scope``. Paused
mutations resume one at a time, oldest first (:meth:`resume_paused_mutations`, also on
reconnect). Durable mutations have a row in the outbox (:mod:`~crdtsync.mutations.outbox_book`).

The client builds mutations (it resolves their options first) with :meth:`build`; the methods
under "called by Mutation" are the mutation's way back into its cache.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..core.network import NetworkMode
from ..core.subscribable import Subscribable
from .events import MutationAdded, MutationCacheEvent, MutationRemoved, MutationUpdated
from .filters import MutationFilters, as_mutation_filters, match_mutation
from .mutation import Mutation, first_unsettled
from .outbox_book import OutboxBook
from .state import MutationAction

if TYPE_CHECKING:
    from .env import MutationEnv
    from .options import Callbacks, MutationOptions
    from .outbox import Outbox, OutboxRecord, Synchronous
    from .overlay import Leaf


class MutationCache(Subscribable[Callable[[MutationCacheEvent], None]]):
    """Created by the client with its :class:`~crdtsync.mutations.env.MutationEnv`."""

    def __init__(self, env: MutationEnv) -> None:
        super().__init__()
        self.env = env
        self._mutations: dict[int, Mutation] = {}
        self._scope_tail: dict[str, Mutation] = {}
        self._log: collections.deque[MutationCacheEvent] | None = None
        self.book = OutboxBook(env.overlay, self._mutations.get)
        self._next_id = 0
        self._session: str | None = None
        self._resume_lock: asyncio.Lock | None = None
        self._pause_signal: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._unsubscribers: list[Callable[[], None]] | None = None

    @property
    def outbox(self) -> Outbox | None:
        """The durable outbox, once the client uses one."""
        return self.book.outbox

    @property
    def closing(self) -> bool:
        return self.book.closing

    def _activate(self) -> None:
        """On first use: a session id for idempotency keys, resume on reconnect, and keep
        stored bases current after every transaction (a peer's or a local write seen by the
        overlay may change them: one outbox UPDATE per affected mutation)."""
        if self._unsubscribers is not None:
            return
        env = self.env
        self._session = f"{env.rng.getrandbits(128):032x}"
        self._unsubscribers = [
            env.online_manager.subscribe(self._on_online),
            env.replica.on_update(lambda doc_id, update, origin: env.overlay.flush_rebased()),
        ]

    # -- building and finding ----------------------------------------------------------------
    def build(self, options: MutationOptions, callbacks: Callbacks, variables: Any, *,
              restored_key: str | None = None, store_restored: bool = False,
              bases: Mapping[Leaf, Any] | None = None) -> Mutation:
        """Create and start a mutation with resolved options. ``restored_key``: it resumes one
        made elsewhere (the outbox on restart, or hydrate); ``store_restored``: also write it to
        this client's outbox, when it came from somewhere else than that outbox (hydrate);
        ``bases``: the restored mutation's stored field bases (what a rollback restores)."""
        self._activate()
        self._next_id += 1
        mid = self._next_id
        ikey = restored_key or f"{self._session}-{mid}"
        mutation = Mutation(self, self.env, options, callbacks, variables, mutation_id=mid, idempotency_key=ikey,
                            restored=restored_key is not None)
        commit = self.book.record(ikey, options, variables, self.env.clock.now(), restored=restored_key is not None,
                                  store_restored=store_restored, bases=bases)
        self.add(mutation)
        try:
            mutation.start(bases)
        finally:
            if commit:
                self.book.commit_new(mutation, self.env.notify_manager)
        return mutation

    def add(self, mutation: Mutation) -> None:
        self._mutations[mutation.mutation_id] = mutation
        self.emit(MutationAdded(mutation))

    def remove(self, mutation: Mutation) -> None:
        if self._mutations.get(mutation.mutation_id) is mutation:
            del self._mutations[mutation.mutation_id]
            mutation.clear_gc()
            if mutation.scope is not None and self._scope_tail.get(mutation.scope) is mutation:
                earlier = mutation.previous  # settled early: earlier ones may still be running
                if earlier is None:
                    del self._scope_tail[mutation.scope]
                else:
                    self._scope_tail[mutation.scope] = earlier
            self.emit(MutationRemoved(mutation))

    def clear(self) -> None:
        for m in list(self._mutations.values()):
            self.remove(m)

    def get(self, mutation_id: int) -> Mutation | None:
        return self._mutations.get(mutation_id)

    def get_all(self) -> list[Mutation]:
        return list(self._mutations.values())

    def find_all(self, filters: MutationFilters | Sequence[Any] | None = None, **kwargs: Any) -> list[Mutation]:
        f = as_mutation_filters(filters, **kwargs)
        return [m for m in self._mutations.values() if match_mutation(f, m)]

    def find(self, filters: MutationFilters | Sequence[Any] | None = None, **kwargs: Any) -> Mutation | None:
        found = self.find_all(filters, **kwargs)
        return found[0] if found else None

    def __len__(self) -> int:
        return len(self._mutations)

    def is_known(self, idempotency_key: str) -> bool:
        """True when this client holds or has settled the mutation with ``idempotency_key``
        (in this cache, its outbox, or among the recently settled)."""
        if any(m.idempotency_key == idempotency_key for m in self._mutations.values()):
            return True
        return self.book.knows(idempotency_key)

    # -- events ------------------------------------------------------------------------------
    def enable_event_log(self, maxlen: int = 1000) -> None:
        """Keep the last ``maxlen`` events (``event_log()``), for debugging and tests."""
        self._log = collections.deque(maxlen=maxlen)

    def event_log(self) -> list[MutationCacheEvent]:
        return list(self._log) if self._log is not None else []

    def emit(self, event: MutationCacheEvent) -> None:
        """Tell every listener (and the event log)."""
        if self._log is not None:
            self._log.append(event)
        for listener in list(self._listeners):
            listener(event)

    # -- called by Mutation ------------------------------------------------------------------
    def mutation_updated(self, mutation: Mutation, action: MutationAction) -> None:
        self.emit(MutationUpdated(mutation, action))

    def mutation_paused(self) -> None:
        """A mutation paused: the resume loop re-scans from the oldest."""
        if self._pause_signal is not None:
            self._pause_signal.set()

    def mutation_settled(self, mutation: Mutation) -> None:
        mutation.schedule_gc()
        self.book.settled_key(mutation.idempotency_key)

    def join_scope(self, mutation: Mutation) -> Mutation | None:
        """Record ``mutation`` as the last of its scope; return the nearest earlier one that
        has not settled (a settled tail may have settled early, before its predecessors)."""
        if mutation.scope is None:
            return None
        prev = self._scope_tail.get(mutation.scope)
        self._scope_tail[mutation.scope] = mutation
        return first_unsettled(prev)

    # -- the outbox --------------------------------------------------------------------------
    def use_outbox(self, outbox: Outbox | str, *,
                   synchronous: Synchronous) -> list[tuple[OutboxRecord, dict[Leaf, Any]]]:
        """Open the outbox; return its rows from a previous run, for the client to rebuild
        (paused, with their stored bases)."""
        self._activate()
        held = {m.idempotency_key for m in self._mutations.values()}
        return self.book.open(outbox, synchronous=synchronous, held=held)

    # -- pausing -----------------------------------------------------------------------------
    def _on_online(self, online: bool) -> None:
        if online and not self.closing:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # set_online from sync code: no loop, so nothing is running to resume
                return
            task = loop.create_task(self.resume_paused_mutations())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def resume_paused_mutations(self) -> None:
        """Resume paused mutations one at a time, oldest first. After each step (a mutation
        settled, or any mutation paused again) it looks again from the oldest, so a resumed
        mutation waiting behind an older one of its scope never blocks the queue."""
        if self._resume_lock is None:
            self._resume_lock = asyncio.Lock()
        if self._pause_signal is None:
            self._pause_signal = asyncio.Event()
        signal = self._pause_signal
        async with self._resume_lock:
            while not self.closing:
                paused = [m for m in self._mutations.values() if m.state.is_paused]
                if not paused:
                    return
                m = paused[0]
                if m.options.network_mode is NetworkMode.ONLINE and not self.env.online_manager.is_online():
                    return
                signal.clear()
                m.resume()
                waiter = asyncio.ensure_future(signal.wait())
                progress = asyncio.ensure_future(m.wait_progress())
                try:
                    await asyncio.wait({waiter, progress}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    waiter.cancel()
                    progress.cancel()

    async def close(self) -> None:
        """Stop every running mutation *without* settling it: outbox rows stay for a restart."""
        if self._unsubscribers is None:
            return
        self.book.closing = True
        for unsub in self._unsubscribers:
            unsub()
        tasks = [t for t in (m.running_task() for m in self._mutations.values()) if t is not None]
        tasks += list(self._tasks)
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self.book.close_outbox()
