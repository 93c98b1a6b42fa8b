"""MutationRuntime: the mutation layer's state for one client (cache, overlay, outbox, defaults).

Created lazily by :class:`~crdtsync.mutations.mixin.MutationsMixin` on first use, so the
client's ``__init__`` needs no change; reach it through the client's methods.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..core.network import NetworkMode
from ..errors import MutationError, OutboxError
from ..keys import QueryKey, normalize_key, partial_match_key
from .cache import MutationCache
from .conflicts import ConflictPolicy, FieldConflict, check_policy
from .events import ConflictDetected
from .filters import MutationFilters, as_mutation_filters
from .mutation import Mutation
from .options import CALLBACK_NAMES, Callbacks, MutationOptions, check_names
from .outbox import Outbox, Synchronous, pack_variables
from .overlay import Leaf, Overlay, decode_bases, encode_bases

if TYPE_CHECKING:
    from ..cache.client import QueryClient

log = logging.getLogger("crdtsync.mutations")
SETTLED_KEYS = 10_000  # settled idempotency keys remembered (hydrate skips them)


class MutationRuntime:
    def __init__(self, client: QueryClient, *, max_client_rewrites: int = 1):
        self.client = client
        self.cache = MutationCache()
        self.overlay = Overlay(client.replica, policy_for=self._policy_for, emit=self._emit_conflict,
                               max_client_rewrites=max_client_rewrites, on_rebase=self.refresh_bases)
        self.outbox: Outbox | None = None
        self._defaults: list[tuple[QueryKey, dict[str, Any]]] = []
        self._policies: list[tuple[QueryKey, ConflictPolicy]] = []
        self._persisted: set[str] = set()
        self._settled_keys: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._next_id = 0
        self._session = f"{client.random.getrandbits(128):032x}"
        self._resume_lock: asyncio.Lock | None = None
        self._pause_signal: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.closing = False
        self._unsub_online = client.online_manager.subscribe(self._on_online)
        # A peer's or a local write seen by the overlay's watchers may change bases: store them
        # once the transaction's watchers have run (one outbox UPDATE per affected mutation).
        self._unsub_update = client.replica.on_update(lambda doc_id, update, origin: self.overlay.flush_rebased())

    # -- defaults and policies ---------------------------------------------------------------
    def set_defaults(self, key: Sequence[Any], options: dict[str, Any]) -> None:
        check_names(options)
        if "conflict_policy" in options:
            check_policy(options["conflict_policy"])
        self._defaults.append((normalize_key(key), dict(options)))

    def get_defaults(self, key: Sequence[Any] | None) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        if key is None:
            return merged
        nkey = normalize_key(key)
        for prefix, opts in self._defaults:
            if partial_match_key(nkey, prefix):
                merged.update(opts)
        return merged

    def set_policy(self, key: Sequence[Any], policy: ConflictPolicy) -> None:
        check_policy(policy)
        self._policies.append((normalize_key(key), policy))

    def _policy_for(self, mutation_id: int, key: QueryKey) -> ConflictPolicy:
        m = self.cache._mutations.get(mutation_id)
        if m is not None and m.options.conflict_policy is not None:
            return m.options.conflict_policy
        chosen: ConflictPolicy = "crdt"
        for prefix, policy in self._policies:
            if partial_match_key(key, prefix):
                chosen = policy
        return chosen

    def _emit_conflict(self, conflict: FieldConflict) -> None:
        self.cache._emit(ConflictDetected(conflict))

    # -- creating ----------------------------------------------------------------------------
    def build(self, variables: Any, options: dict[str, Any], *, extra: Callbacks | None = None,
              restored_key: str | None = None, store_restored: bool = False,
              bases: Mapping[Leaf, Any] | None = None) -> Mutation:
        """Create and start a mutation. ``restored_key``: it resumes one made elsewhere (the
        outbox on restart, or hydrate); ``store_restored``: also write it to this client's
        outbox, when it came from somewhere else than that outbox (hydrate); ``bases``: the
        restored mutation's stored field bases (what a rollback restores)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            raise MutationError("mutate() needs a running asyncio event loop") from None
        check_names(options)
        if "conflict_policy" in options:
            check_policy(options["conflict_policy"])
        if options.get("mutation_key") is not None:
            options = {**options, "mutation_key": normalize_key(options["mutation_key"])}
        defaults = self.get_defaults(options.get("mutation_key"))
        merged = {**defaults, **{k: v for k, v in options.items() if k not in CALLBACK_NAMES}}
        callbacks = Callbacks(
            on_mutate=options.get("on_mutate") or defaults.get("on_mutate"),
            on_success=_chain(defaults.get("on_success"), options.get("on_success"), extra and extra.on_success),
            on_error=_chain(defaults.get("on_error"), options.get("on_error"), extra and extra.on_error),
            on_settled=_chain(defaults.get("on_settled"), options.get("on_settled"), extra and extra.on_settled),
        )
        merged.pop("on_mutate", None)
        for name in CALLBACK_NAMES:
            merged.pop(name, None)
        if isinstance(merged.get("network_mode"), str):
            merged["network_mode"] = NetworkMode(merged["network_mode"])
        opts = MutationOptions(**merged)
        self._next_id += 1
        mid = self._next_id
        ikey = restored_key or f"{self._session}-{mid}"
        mutation = Mutation(self, opts, callbacks, variables, mutation_id=mid, idempotency_key=ikey,
                            restored=restored_key is not None)
        outbox = self.outbox
        record_bases = False
        if restored_key is not None and store_restored and outbox is not None and opts.mutation_key is not None:
            if all(rec.idempotency_key != ikey for rec in outbox.pending()):
                outbox.add(ikey, opts.mutation_key, opts.scope, variables, self.client.clock.now(),
                           bases=encode_bases(bases) if bases else None)
            self._persisted.add(ikey)
        elif restored_key is not None:
            self._persisted.add(ikey)
        elif outbox is not None and opts.durable and opts.mutation_key is not None:
            # The row and the bases of its optimistic edit commit together, after the edit; inside
            # client.batch() the rows of all its mutations commit once, when it ends.
            outbox.add(ikey, opts.mutation_key, opts.scope, variables, self.client.clock.now(), commit=False)
            self._persisted.add(ikey)
            record_bases = True
        elif opts.durable and opts.mutation_key is not None:
            pack_variables(variables)  # fail early: a mutation that could not be persisted later
        self.cache.add(mutation)
        try:
            mutation.start(bases)
        finally:
            if record_bases and outbox is not None:
                own = self.overlay.bases_of(mid)
                if own:
                    outbox.set_bases(ikey, encode_bases(own))
                if self.client.notify_manager.batching:
                    self.client.notify_manager.schedule(outbox, outbox.commit)
                else:
                    outbox.commit()
        return mutation

    def refresh_bases(self, leaves: list[Leaf]) -> None:
        """The base of ``leaves`` changed (a fetch or a peer's change landed, or a mutation on
        them succeeded): store the new bases with the durable mutations still pending on them,
        one outbox UPDATE per mutation, all in one commit. Called by the overlay
        (``Overlay.flush_rebased``). A failed write is logged, not raised (see
        :meth:`persist_bases`). Dehydrate needs nothing: it reads the bases from the overlay."""
        if self.outbox is None or self.closing:
            return
        rows = []
        for mid in sorted(self.overlay.sharing(leaves)):
            m = self.cache._mutations.get(mid)
            if m is not None and m.idempotency_key in self._persisted:
                rows.append((m.idempotency_key, encode_bases(self.overlay.bases_of(mid))))
        try:
            self.outbox.set_bases_many(rows)
        except OutboxError:
            log.exception("cannot store the field bases of %d pending mutations; a rollback after a "
                          "restart may restore older values", len(rows))

    def persist_bases(self, mutation: Mutation) -> None:
        """Store ``mutation``'s current field bases with its outbox row (when it has one). A
        failed write is logged, not raised: the fetch or sync that changed the base goes on,
        and the row keeps its older bases."""
        if self.outbox is None or self.closing or mutation.idempotency_key not in self._persisted:
            return
        try:
            self.outbox.set_bases(mutation.idempotency_key,
                                  encode_bases(self.overlay.bases_of(mutation.mutation_id)))
        except OutboxError:
            log.exception("mutation %s: cannot store its field bases; a rollback after a restart may "
                          "restore older values", mutation.mutation_id)

    def settled_key(self, idempotency_key: str) -> None:
        """Remember a settled mutation's idempotency key (the last ``SETTLED_KEYS`` of them), so
        hydrating a state that still carries it does not send it again."""
        self._settled_keys[idempotency_key] = None
        self._settled_keys.move_to_end(idempotency_key)
        while len(self._settled_keys) > SETTLED_KEYS:
            self._settled_keys.popitem(last=False)

    def is_known(self, idempotency_key: str) -> bool:
        """True when this client holds or has settled the mutation with ``idempotency_key``
        (in its mutation cache, its outbox, or among the recently settled)."""
        if idempotency_key in self._settled_keys:
            return True
        if any(m.idempotency_key == idempotency_key for m in self.cache.get_all()):
            return True
        return self.outbox is not None and any(rec.idempotency_key == idempotency_key
                                               for rec in self.outbox.pending())

    def persist_variables(self, mutation: Mutation, variables: Any) -> None:
        if self.outbox is not None and mutation.idempotency_key in self._persisted:
            self.outbox.update_variables(mutation.idempotency_key, variables)

    def forget(self, mutation: Mutation) -> None:
        if self.outbox is not None and mutation.idempotency_key in self._persisted:
            self.outbox.remove(mutation.idempotency_key)
            self._persisted.discard(mutation.idempotency_key)

    # -- outbox ------------------------------------------------------------------------------
    def use_outbox(self, outbox: Outbox | str, *, synchronous: Synchronous = "NORMAL") -> list[Mutation]:
        if self.outbox is not None:
            raise RuntimeError("this client already uses an outbox")
        self.outbox = outbox if isinstance(outbox, Outbox) else Outbox(outbox, synchronous=synchronous)
        restored = []
        held = {m.idempotency_key for m in self.cache.get_all()}
        for rec in self.outbox.pending():
            if rec.idempotency_key in held:  # already here (hydrated before the outbox was opened)
                self._persisted.add(rec.idempotency_key)
                continue
            if rec.idempotency_key in self._settled_keys:  # settled meanwhile: the row is stale
                self.outbox.remove(rec.idempotency_key)
                continue
            opts: dict[str, Any] = {"mutation_key": rec.mutation_key}
            if rec.scope is not None:
                opts["scope"] = rec.scope
            try:
                bases = decode_bases(rec.bases)
            except ValueError:
                log.warning("outbox row %s: malformed field bases ignored", rec.seq)
                bases = {}
            restored.append(self.build(rec.variables, opts, restored_key=rec.idempotency_key, bases=bases))
        return restored

    # -- pausing -----------------------------------------------------------------------------
    def _on_online(self, online: bool) -> None:
        if online and not self.closing:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # set_online from sync code: no loop, so nothing is running to resume
                return
            task = loop.create_task(self.resume_paused())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _paused(self) -> None:
        """Called by a mutation when it pauses: the resume loop re-scans from the oldest."""
        if self._pause_signal is not None:
            self._pause_signal.set()

    async def resume_paused(self) -> None:
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
                paused = [m for m in self.cache.get_all() if m.state.is_paused]
                if not paused:
                    return
                m = paused[0]
                if m.options.network_mode is NetworkMode.ONLINE and not self.client.online_manager.is_online():
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

    # -- queries -----------------------------------------------------------------------------
    def count_pending(self, filters: MutationFilters | Sequence[Any] | None, kwargs: dict[str, Any]) -> int:
        f = dataclasses.replace(as_mutation_filters(filters, **kwargs), status="pending")
        return len(self.cache.find_all(f))

    async def close(self) -> None:
        """Stop every running mutation *without* settling it: outbox rows stay for a restart."""
        self.closing = True
        self._unsub_online()
        self._unsub_update()
        tasks = [m._task for m in self.cache.get_all() if m._task is not None and not m._task.done()]
        tasks += list(self._tasks)
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self.outbox is not None:
            self.outbox.close()


def _chain(*fns: Any) -> tuple[Callable[..., Any], ...]:
    out: list[Callable[..., Any]] = []
    for f in fns:
        if isinstance(f, tuple):
            out.extend(f)
        elif f is not None:
            out.append(f)
    return tuple(out)
