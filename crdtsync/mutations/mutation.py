"""Mutation: one call of a mutation function, with its optimistic edit and lifecycle.

Created by ``client.mutate`` / ``mutate_async`` / ``MutationObserver.mutate`` (or restored from
the outbox), never directly. What happens, in order:

1. ``mutate`` records the mutation in the outbox (when the client has one and the mutation has
   a key), sets ``status="pending"`` and runs ``optimistic(tx, variables)`` synchronously: the
   edit is a CRDT transaction with the mutation's own origin, visible to observers before
   ``mutate`` returns.
2. A task runs ``on_mutate`` (after the ``on_mutate`` of the previous mutation of the same
   scope), waits until the previous mutation of its scope has settled, waits for the network
   (network mode ``online``: *paused* while offline, resumed in order by
   ``resume_paused_mutations``), then calls ``mutation_fn(variables, ctx)`` with retries.
3. A version conflict (``is_conflict(error)``) calls ``resolve_conflict``; new variables
   replace the optimistic edit in one transaction and the function is called again.
4. Success: the optimistic values stay and become the fields' base; the outbox row is
   deleted; ``on_success`` then ``on_settled`` run; ``status="success"``.
   Failure (or ``cancel()``): exactly this mutation's edit is rolled back first, then
   ``on_error`` and ``on_settled`` run; ``status="error"``.

Await the outcome with ``await mutation.result()`` (raises the mutation's error).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..core.network import NetworkMode
from ..core.removable import Removable
from ..core.retryer import Retryer
from ..errors import ConflictError, MutationCancelledError, MutationNotFoundError, OutboxError
from ..keys import QueryKey
from .conflicts import default_is_conflict, version_conflict
from .events import VersionConflictDetected
from .optimistic import OptimisticTx
from .options import Callbacks, MutationFunctionContext, MutationOptions
from .overlay import Leaf
from .state import (
    Continue,
    Error,
    Failed,
    MutationAction,
    MutationState,
    Pause,
    Pending,
    Resolved,
    SetContext,
    Success,
    reduce,
)

if TYPE_CHECKING:
    from ..clock import Clock
    from .cache import MutationCache
    from .env import MutationEnv

log = logging.getLogger("crdtsync.mutations")
MutationListener = Callable[["Mutation", MutationAction], None]


async def call(fn: Callable[..., Any], *args: Any) -> Any:
    """Call a sync or async callback."""
    result = fn(*args)
    if inspect.isawaitable(result):
        return await result
    return result


class Mutation(Removable):
    """See the module docs. ``state`` is a frozen :class:`MutationState`."""

    def __init__(self, cache: MutationCache, env: MutationEnv, options: MutationOptions, callbacks: Callbacks,
                 variables: Any, *, mutation_id: int, idempotency_key: str, restored: bool = False):
        self._cache = cache
        self._env = env
        self.options = options
        self.gc_time = options.gc_time
        self.callbacks = callbacks
        self.mutation_id = mutation_id
        self.idempotency_key = idempotency_key
        self.restored = restored
        self.state = MutationState(variables=variables)
        self.observers: list[MutationListener] = []
        self._hold = restored
        self._cancelled = False
        self._task: asyncio.Task[None] | None = None
        self._resume_fut: asyncio.Future[None] | None = None
        self._progress = asyncio.Event()
        self._mutated = asyncio.Event()
        self._settled: asyncio.Future[Any] | None = None
        self._prev: Mutation | None = None
        self._optimistic_error: BaseException | None = None
        self.attempts = 0

    @property
    def mutation_key(self) -> QueryKey | None:
        return self.options.mutation_key

    @property
    def scope(self) -> str | None:
        return self.options.scope

    def __repr__(self) -> str:
        return f"<Mutation {self.mutation_id} {self.mutation_key!r} {self.state.phase}>"

    # -- state -------------------------------------------------------------------------------
    def _dispatch(self, action: MutationAction) -> None:
        self.state = reduce(self.state, action)
        if isinstance(action, Pause):
            self._progress.set()
            self._cache.mutation_paused()
        with self._env.notify_manager.batch():
            for listener in list(self.observers):
                listener(self, action)
            self._cache.mutation_updated(self, action)

    # -- starting ----------------------------------------------------------------------------
    def start(self, bases: Mapping[Leaf, Any] | None = None) -> None:
        """Apply the optimistic edit now and run the rest in a task (called by its cache).
        ``bases``: a restored mutation's stored field bases (see ``Overlay.seeding``)."""
        loop = asyncio.get_running_loop()
        self._settled = loop.create_future()
        self._settled.add_done_callback(_retrieve)
        self._prev = self._cache.join_scope(self)
        paused = self._hold = self._hold or self._must_wait_network()
        paused = paused or self._prev is not None  # as TanStack: waiting for its scope is paused
        self._dispatch(Pending(self.state.variables, paused, self._env.clock.now()))
        with self._env.overlay.seeding(bases):
            self._apply_optimistic(self.state.variables, replay=self.restored)
        self._task = loop.create_task(self._run())

    def _apply_optimistic(self, variables: Any, *, replay: bool = False) -> None:
        """Run the optimistic function. ``replay``: it re-runs for a restored mutation (the
        outbox after a restart, or hydrate); an error then only costs the optimistic edit (the
        data it reads may not be loaded yet): the mutation itself still runs."""
        fn = self.options.optimistic
        if fn is None:
            return
        env = self._env
        tx = OptimisticTx(env.overlay, env.replica, self.mutation_id, env.is_normalized)
        try:
            with env.notify_manager.batch():
                fn(tx, variables)
        except Exception as exc:
            env.overlay.rollback(self.mutation_id)
            if replay:
                log.warning("mutation %s (%s): replaying its optimistic edit failed; it runs without it",
                            self.mutation_id, self.idempotency_key, exc_info=True)
            else:
                self._optimistic_error = exc

    def _must_wait_network(self) -> bool:
        return self.options.network_mode is NetworkMode.ONLINE and not self._env.online_manager.is_online()

    # -- control -----------------------------------------------------------------------------
    def resume(self) -> None:
        """Let a paused mutation continue (``resume_paused_mutations`` calls this in order)."""
        self._hold = False
        self._progress.clear()
        if self._resume_fut is not None and not self._resume_fut.done():
            self._resume_fut.set_result(None)

    def cancel(self) -> None:
        """Stop the mutation: its optimistic edit is rolled back and it fails with
        :class:`~crdtsync.errors.MutationCancelledError` (a request already sent may still
        reach the server: the idempotency key lets it be recognised)."""
        if self._task is not None and not self._task.done():
            self._cancelled = True
            self._task.cancel()

    @property
    def previous(self) -> Mutation | None:
        """The nearest earlier mutation of its scope it still waits for (None: none)."""
        return self._prev

    def running_task(self) -> asyncio.Task[None] | None:
        """The task running the mutation, while it runs."""
        return self._task if self._task is not None and not self._task.done() else None

    async def result(self) -> Any:
        """Wait for the mutation to settle; return its data or raise its error."""
        assert self._settled is not None, "the mutation was never started"
        return await asyncio.shield(self._settled)

    async def wait_progress(self) -> None:
        """Return once the mutation has settled or paused again."""
        if self._settled is not None and self._settled.done():
            return
        waiter = asyncio.ensure_future(self._progress.wait())
        assert self._settled is not None
        try:
            await asyncio.wait({waiter, self._settled}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()

    # -- running -----------------------------------------------------------------------------
    async def _run(self) -> None:
        data: Any = None
        error: BaseException | None = None
        try:
            try:
                if self._prev is not None:
                    await self._prev._mutated.wait()
                if self._optimistic_error is None and self.callbacks.on_mutate is not None:
                    context = await call(self.callbacks.on_mutate, self.state.variables)
                    if context is not None:
                        self._dispatch(SetContext(context))
                self._mutated.set()
                await self._wait_scope()
                if self._optimistic_error is not None:
                    raise self._optimistic_error
                data = await self._attempts()
            finally:
                self._mutated.set()
        except asyncio.CancelledError:
            if self._cache.closing:  # shutting down: stay unsettled, the outbox row survives
                if self._settled is not None and not self._settled.done():
                    self._settled.cancel()
                return
            error = MutationCancelledError(f"mutation {self.mutation_id} was cancelled")
        except Exception as exc:
            error = exc
        if error is None:
            await self._succeed(data)
        else:
            await self._fail(error)

    async def _wait_scope(self) -> None:
        """Wait until every earlier mutation of the scope has settled. A predecessor that
        settled early (cancelled, or its optimistic function raised) has not waited for the
        ones before it: its ``_prev`` still names them, so the walk goes on from there (a loop,
        not recursion: a scope can hold many mutations). Once done, the chain is released."""
        prev = self._prev
        while prev is not None:
            self._prev = prev
            await prev.wait_settled()
            prev = prev._prev  # None once prev itself had waited for its predecessors
        self._prev = None

    async def wait_settled(self) -> None:
        """Wait until settled, whatever the outcome (never raises the mutation's error)."""
        if self._settled is not None:
            await asyncio.wait({self._settled})  # our own cancellation still propagates

    async def _wait_network(self) -> None:
        # Once paused, only resume() continues it, so paused mutations run in order, one at a
        # time, instead of all at once when the network returns.
        while self._hold or self._must_wait_network():
            self._hold = True
            if not self.state.is_paused:
                self._dispatch(Pause())
            self._progress.set()
            self._resume_fut = asyncio.get_running_loop().create_future()
            await self._resume_fut
        if self.state.is_paused:
            self._dispatch(Continue())

    async def _attempts(self) -> Any:
        opts = self.options
        is_conflict = opts.is_conflict or default_is_conflict
        conflicts = 0

        async def attempt() -> Any:
            fn = opts.mutation_fn
            if fn is None:
                raise MutationNotFoundError(f"no mutation_fn for mutation key {self.mutation_key!r}")
            self.attempts += 1
            ctx = MutationFunctionContext(self._env.client, self.mutation_id, self.idempotency_key,
                                          self.mutation_key, opts.meta, self.attempts, lambda: self._cancelled)
            return await fn(self.state.variables, ctx)

        async def on_conflict(err: Exception, failures: int) -> bool:
            """A version conflict is resolved (new variables) and tried again, not retried."""
            nonlocal conflicts
            if not is_conflict(err):
                return False
            conflicts += 1
            await self._resolve(err, conflicts)
            self._dispatch(Failed(failures + conflicts, err))
            return True

        async def gate(failures: int) -> None:
            await self._wait_network()

        retryer: Retryer[Any] = Retryer(
            attempt, retry=opts.retry, retry_delay=opts.retry_delay, clock=self._env.clock,
            rng=self._env.rng, gate=gate, on_fail=lambda n, err: self._dispatch(Failed(n, err)),
            intercept=on_conflict, passthrough=(MutationNotFoundError,))
        return await retryer.run()

    async def _resolve(self, err: Exception, attempt: int) -> None:
        opts = self.options
        vc = version_conflict(self.mutation_key, self.state.variables, err, attempt)
        resolved: Any = None
        if opts.resolve_conflict is not None and attempt <= opts.max_conflict_retries:
            resolved = await call(opts.resolve_conflict, vc)
        self._cache.emit(VersionConflictDetected(self, vc, resolved))
        if resolved is None:
            raise ConflictError(f"version conflict not resolved for mutation {self.mutation_id}: {err}") from err
        self._dispatch(Resolved(resolved))
        self._cache.book.persist_variables(self, resolved)
        if opts.optimistic is not None:
            with self._env.overlay.replacing(self.mutation_id):
                self._apply_optimistic(resolved)
            self._cache.book.persist_bases(self)  # the new edit may own other fields
            if self._optimistic_error is not None:
                raise self._optimistic_error

    async def _succeed(self, data: Any) -> None:
        # This value is now the base under later edits: settle() stores it with them (outbox).
        self._env.overlay.settle(self.mutation_id)
        self._cache.book.forget(self)
        st = self.state
        for cb in self.callbacks.on_success:
            await self._safe(cb, data, st.variables, st.context)
        for settled_cb in self.callbacks.on_settled:
            await self._safe(settled_cb, data, None, st.variables, st.context)
        self._dispatch(Success(data))
        self._finish(data, None)

    async def _fail(self, error: BaseException) -> None:
        self._env.overlay.rollback(self.mutation_id)
        if not isinstance(error, (MutationNotFoundError, OutboxError)):
            self._cache.book.forget(self)  # a restored mutation nobody can run stays in the outbox
        st = self.state
        for error_cb in self.callbacks.on_error:
            await self._safe(error_cb, error, st.variables, st.context)
        for settled_cb in self.callbacks.on_settled:
            await self._safe(settled_cb, None, error, st.variables, st.context)
        self._dispatch(Error(error))
        self._finish(None, error)

    def _finish(self, data: Any, error: BaseException | None) -> None:
        # Settled before its predecessors (cancelled while waiting): keep only the nearest one
        # still unsettled, for the later mutations of the scope to wait for.
        self._prev = first_unsettled(self._prev)
        self._progress.set()
        if self._settled is not None and not self._settled.done():
            if error is None:
                self._settled.set_result(data)
            else:
                self._settled.set_exception(error)
        self._cache.mutation_settled(self)

    async def _safe(self, cb: Callable[..., Any], *args: Any) -> None:
        try:
            await call(cb, *args)
        except Exception:
            log.exception("mutation %s: a lifecycle callback raised", self.mutation_id)

    # -- gc ----------------------------------------------------------------------------------
    def gc_clock(self) -> Clock:
        return self._env.clock

    def schedule_gc(self) -> None:
        """Start the gc timer of a settled mutation nobody observes (else only stop it)."""
        if self.state.is_settled and not self.observers:
            super().schedule_gc()
        else:
            self.clear_gc()

    def optional_remove(self) -> None:
        if not self.observers and self.state.is_settled:
            self._cache.remove(self)


def first_unsettled(m: Mutation | None) -> Mutation | None:
    """``m`` or the nearest earlier mutation of its scope that has not settled yet."""
    while m is not None and m._settled is not None and m._settled.done():
        m = m._prev
    return m


def _retrieve(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        fut.exception()
