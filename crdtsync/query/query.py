"""One cached query: its key, options, state and the fetch that feeds it.

The data itself lives in the replica at the key's route; ``state.data`` is a structurally
shared view of it, refreshed whenever the document changes there (a fetch, a local write, a
mutation, a peer's update). Everything else in the state (status, timestamps, errors,
failure counts) is metadata owned by this object and changed only through :func:`reduce`.

Concurrent ``fetch()`` calls share one task (deduplication). ``cancel()`` stops the task and
keeps the previous data; the query is then in error with a ``QueryCancelledError``. With
``revert=True`` the metadata goes back to what it was when the fetch began and the fetch
returns that data (as TanStack's ``cancel({revert})``).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeAlias

from ..core.network import NetworkMode
from ..core.removable import Removable
from ..core.retryer import Retryer
from ..errors import QueryCancelledError, QueryNotFoundError
from ..keys import QueryKey
from ..origins import FETCH, LOCAL, Origin
from ..values import MISSING, replace_equal_deep
from . import infinite
from .options import QueryFunctionContext, QueryOptions, resolve_stale_time
from .state import (
    Action,
    Cancelled,
    Continue,
    DataChanged,
    Error,
    Failed,
    Fetch,
    Pause,
    QueryState,
    SetState,
    Success,
    reduce,
)

if TYPE_CHECKING:
    from ..client import QueryClient
    from ..clock import Clock
    from ..normalize.shape import EntityKey
    from .observer import QueryObserver

FetchWriter: TypeAlias = "Callable[[Query, Any], None]"


def write_plain(query: Query, data: Any) -> None:
    """The fetch-path writer of a query layer on its own: ``data`` as it came."""
    query.write_data(data, origin=FETCH)


class Query(Removable):
    """Created by :class:`QueryCache.build`; use the client's methods rather than this class."""

    def __init__(self, client: QueryClient, options: QueryOptions, query_hash: str, *,
                 fetch_writer: FetchWriter = write_plain):
        self.client = client
        self._fetch_writer = fetch_writer
        self.options = options
        self.gc_time = options.gc_time  # the longest seen in its options, as TanStack
        self.query_key: QueryKey = options.query_key
        self.query_hash = query_hash
        self.route = client.replica.route(self.query_key)
        self.observers: list[QueryObserver] = []
        self._task: asyncio.Task[Any] | None = None
        self._revert_state: QueryState | None = None
        self._cancel_request: tuple[bool, bool] | None = None
        self._retryer: Retryer[Any] | None = None  # the latest fetch's (cancel_retry, continue_retry)
        self._writing = False
        self._destroyed = False
        self._fetch_started_at: float | None = None
        self.state = self._initial_state()
        self._stop_watch = client.replica.watch(self.route.doc_id, self.route.path, self._on_replica_change)

    # -- state -------------------------------------------------------------------------------
    def read_data(self) -> Any:
        """The query's data as stored (denormalized when it has a ``normalize`` shape)."""
        if self.options.normalize is not None:
            return self.client.entities.read_query(self)
        return self.client.replica.read(self.query_key)

    def write_data(self, data: Any, *, origin: Origin) -> None:
        """Diff-write ``data`` (through the entity store when it has a ``normalize`` shape)."""
        if self.options.normalize is not None:
            started = self._fetch_started_at if origin == FETCH else None  # local writes always apply
            self.client.entities.write_query(self, data, origin=origin, started_at=started)
        else:
            self.client.replica.write(self.query_key, data, origin=origin)

    def _initial_state(self, *, reset: bool = False) -> QueryState:
        data = self.read_data()
        if (data is MISSING or reset) and self.options.initial_data is not None:
            initial = self.options.initial_data
            value = initial() if callable(initial) else initial
            self.write_data(value, origin=LOCAL)
            data = self.read_data()
            at = self.options.initial_data_updated_at
            return QueryState(
                data=data,
                status="success",
                data_updated_at=self.client.clock.now() if at is None else at,
            )
        if data is MISSING:
            return QueryState()
        return QueryState(data=data, status="success", data_updated_at=0.0)

    def dispatch(self, action: Action) -> None:
        """Apply ``action`` through the reducer and notify observers and the cache."""
        self.state = reduce(self.state, action)
        with self.client.notify_manager.batch():
            for obs in list(self.observers):
                obs._on_query_update(action)
            self.client.query_cache._query_updated(self, action)

    def _on_replica_change(self, origin: Origin) -> None:
        if self._writing or self._destroyed:
            return
        self.refresh()

    # What the entity store sees of a query (crdtsync.normalize.referrer.EntityReferrer).
    @property
    def normalize_shape(self) -> Any:
        return self.options.normalize

    @property
    def current_data(self) -> Any:
        return self.state.data

    def entities_changed(self, keys: set[EntityKey]) -> None:
        """Referenced entities changed: patch them into the data (or rebuild when needed)."""
        if self._writing or self._destroyed:
            return
        data = self.client.entities.patched(self, keys)
        if data is MISSING:
            self.refresh()
        elif data is not self.state.data:
            self.dispatch(DataChanged(data))

    def refresh(self) -> None:
        """Re-read the document; dispatch ``DataChanged`` when the data differs from the state."""
        data = self.read_data()
        shared = replace_equal_deep(self.state.data, data) if self.options.structural_sharing else data
        if shared is self.state.data:
            return
        self.dispatch(DataChanged(shared))

    def set_data(self, data: Any, *, updated_at: float | None = None, manual: bool = False,
                 origin: Origin = LOCAL) -> Any:
        """Diff-write ``data`` into the document and record a success. Returns the stored data.
        A fetch result (origin FETCH) goes through the injected fetch-path writer."""
        self._writing = True
        try:
            if origin == FETCH:
                self._fetch_writer(self, data)
            else:
                self.write_data(data, origin=origin)
        finally:
            self._writing = False
        stored = self.read_data()
        shared = replace_equal_deep(self.state.data, stored) if self.options.structural_sharing else stored
        at = self.client.clock.now() if updated_at is None else updated_at
        self.dispatch(Success(shared, at, manual))
        return shared

    def set_options(self, options: QueryOptions) -> None:
        self.options = options
        self.gc_time = max(self.gc_time, options.gc_time)  # as TanStack's updateGcTime
        if not self.state.has_data and options.initial_data is not None:  # as TanStack's setOptions
            initial = options.initial_data
            self.set_data(initial() if callable(initial) else initial, manual=True,
                          updated_at=options.initial_data_updated_at)

    def dispatch_reset(self) -> None:
        """Back to "never fetched": initial data written again if configured, else the
        document's current data with ``data_updated_at`` 0 (stale)."""
        self._writing = True  # the reset state below carries the rewritten initial data
        try:
            state = self._initial_state(reset=True)
        finally:
            self._writing = False
        self.dispatch(SetState(state))

    # -- status ------------------------------------------------------------------------------
    def is_active(self) -> bool:
        return any(o.is_enabled() for o in self.observers)

    def is_disabled(self) -> bool:
        """Only disabled observers, or (as TanStack) none and never fetched."""
        if self.observers:
            return not self.is_active()
        return self.state.data_update_count + self.state.error_update_count == 0

    def is_stale_by_time(self, stale_time: float) -> bool:
        st = self.state
        if not st.has_data or st.is_invalidated:
            return True
        if math.isinf(stale_time):
            return False
        return self.client.clock.now() >= st.data_updated_at + stale_time

    def is_stale(self) -> bool:
        """Stale for any of its active observers, or by its own ``stale_time`` without any."""
        if self.state.is_invalidated or not self.state.has_data:
            return True
        active = [o for o in self.observers if o.is_enabled()]
        if active:
            return any(o.get_current_result().is_stale for o in active)
        return self.is_stale_by_time(resolve_stale_time(self.options.stale_time, self))

    def is_fetching(self) -> bool:
        return self._task is not None and not self._task.done()

    # -- observers and gc --------------------------------------------------------------------
    def add_observer(self, observer: QueryObserver) -> None:
        if observer not in self.observers:
            self.observers.append(observer)
            self.clear_gc()
            self.client.query_cache._observer_added(self, observer)

    def remove_observer(self, observer: QueryObserver) -> None:
        if observer in self.observers:
            self.observers.remove(observer)
            if not self.observers:
                if self._retryer is not None:  # as TanStack's cancelRetry: this attempt is the last
                    self._retryer.cancel_retry()
                self.schedule_gc()
            self.client.query_cache._observer_removed(self, observer)

    def gc_clock(self) -> Clock:
        return self.client.clock

    def optional_remove(self) -> None:
        """The gc timer fired (see :class:`~crdtsync.core.removable.Removable`); a query that
        could not schedule it (no event loop) is scheduled by its next fetch."""
        if self.observers:
            return
        if self.is_fetching():
            return  # the fetch schedules gc again once it settles
        self.client.query_cache.remove(self)

    def destroy(self) -> None:
        """Stop watching the document and drop timers (the document data is kept)."""
        self._destroyed = True
        self.clear_gc()
        self._stop_watch()
        if self.options.normalize is not None:
            self.client.entities.release(self)
        if self.is_fetching():
            self.cancel(silent=True)

    # -- fetching ----------------------------------------------------------------------------
    async def fetch(self, *, cancel_refetch: bool = False, meta: dict[str, Any] | None = None) -> Any:
        """Fetch (or join the fetch in flight) and return the stored data."""
        if self.gc_deferred and not self.observers:
            self.schedule_gc()
        if self.is_fetching():
            if cancel_refetch and self.state.has_data:
                self.cancel(silent=True)
            else:
                if self._retryer is not None:  # someone wants the result again
                    self._retryer.continue_retry()
                return await self._await_task()
        if self._destroyed:
            self._destroyed = False
            self._stop_watch = self.client.replica.watch(
                self.route.doc_id, self.route.path, self._on_replica_change
            )
        self._task = asyncio.get_running_loop().create_task(self._run_fetch(meta))
        self._task.add_done_callback(self._fetch_settled)
        return await self._await_task()

    def _fetch_settled(self, task: asyncio.Task[Any]) -> None:
        if not self.observers and not self._destroyed and task is self._task:
            self.schedule_gc()  # as TanStack: gc_time counts from the end of the last fetch

    async def _await_task(self) -> Any:
        while True:
            task = self._task
            assert task is not None
            try:
                return await asyncio.shield(task)
            except QueryCancelledError as exc:
                # A silent cancel means a newer fetch replaced this one: wait for that instead.
                if exc.silent and self._task is not task and self._task is not None:
                    continue
                raise
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if not task.cancelled() or (current is not None and current.cancelling() > 0):
                    raise  # the awaiting task itself is being cancelled
                # The fetch was cancelled before it even started, so it could not say so itself.
                if self._task is not task and self._task is not None:
                    continue
                revert, silent = self._cancel_request or (False, False)
                raise QueryCancelledError(revert=revert, silent=silent) from None

    def cancel(self, *, revert: bool = False, silent: bool = False) -> None:
        """Cancel the fetch in flight (no-op when idle)."""
        if self._task is not None and not self._task.done():
            self._cancel_request = (revert, silent)
            self._task.cancel()

    def _start_background_fetch(self) -> None:
        """Start a fetch whose errors stay in the state (for observers and timers)."""
        self.client._spawn(self.fetch())

    async def _run_fetch(self, meta: dict[str, Any] | None) -> Any:
        revert_state = self.state
        self._cancel_request = None
        self._fetch_started_at = self.client.entities.tick()
        online = self.client.online_manager
        mode = self.options.network_mode
        self.dispatch(Fetch(paused=mode is NetworkMode.ONLINE and not online.is_online(), meta=meta))

        focus = self.client.focus_manager

        async def gate(failures: int) -> None:
            must_wait = mode is NetworkMode.ONLINE or (mode is NetworkMode.OFFLINE_FIRST and failures > 0)
            waited = False
            while True:
                if failures and not focus.is_focused():  # as TanStack's retryer: retries wait for focus
                    wait = focus.wait_focused
                elif must_wait and not online.is_online():
                    wait = online.wait_online
                else:
                    break
                if self.state.fetch_status != "paused":
                    self.dispatch(Pause())
                await wait()
                waited = True
            if waited:
                self.dispatch(Continue())

        retryer: Retryer[Any] = Retryer(
            lambda: self._call_query_fn(meta), retry=self.options.retry, retry_delay=self.options.retry_delay,
            clock=self.client.clock, rng=self.client.random, gate=gate,
            on_fail=lambda n, err: self.dispatch(Failed(n, err)), passthrough=(QueryCancelledError,))
        self._retryer = retryer
        try:
            try:
                data = await retryer.run()
            except (asyncio.CancelledError, QueryCancelledError):
                raise
            except Exception as err:
                self.dispatch(Error(err, self.client.clock.now()))
                raise
            try:
                return self.set_data(data, origin=FETCH)
            except Exception as err:  # the result cannot be stored (not JSON-like, no entity id)
                self.dispatch(Error(err, self.client.clock.now()))
                raise
        except asyncio.CancelledError:
            revert, silent = self._cancel_request or (False, False)
            if not (revert or silent):  # as TanStack: a plain cancel is an error of the query
                self.dispatch(Error(QueryCancelledError(revert=False, silent=False), self.client.clock.now()))
                raise QueryCancelledError(revert=revert, silent=silent) from None
            self.dispatch(Cancelled(revert_state if revert else None))
            if revert and not silent and self.state.has_data:
                return self.state.data  # as TanStack: resolve with the restored data
            raise QueryCancelledError(revert=revert, silent=silent) from None

    async def _call_query_fn(self, meta: dict[str, Any] | None) -> Any:
        fn = self.options.query_fn
        if fn is None:
            raise QueryNotFoundError(f"no query_fn for {self.query_key!r} and no default registered")
        task = self._task

        def cancelled() -> bool:
            return task is not None and task.cancelling() > 0

        inf = self.options.infinite
        if inf is None:
            return await fn(QueryFunctionContext(self.query_key, cancelled, self.options.meta))
        direction = (meta or {}).get("direction")

        async def fetch_page(param: Any, d: infinite.Direction) -> Any:
            ctx = QueryFunctionContext(self.query_key, cancelled, self.options.meta, param, d)
            return await fn(ctx)

        return await infinite.fetch_pages(inf, self.state.data, direction, fetch_page)

    def __repr__(self) -> str:
        return f"<Query {self.query_key!r} {self.state.status}/{self.state.fetch_status}>"


def swallow(task: asyncio.Task[Any]) -> None:
    """Done-callback that marks a background task's exception as retrieved."""
    with contextlib.suppress(BaseException):
        task.exception()
