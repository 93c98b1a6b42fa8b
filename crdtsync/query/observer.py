"""QueryObserver: one consumer's view of a query.

Subscribe with a callback (``observer.subscribe(fn)``) or iterate (``async for result in
observer``). The first subscriber mounts the observer: it joins the query, fetches when the
data is missing or stale (``refetch_on_mount``), and starts the stale and interval timers.

A listener is called only when the observer's result changed in one of the tracked fields
(``notify_on_change_props``, by default data, error, status, fetch_status, is_stale and
is_placeholder_data). ``data`` is compared by identity: structural sharing keeps unchanged
data (and an unchanged ``select`` output) the very same object, so a change elsewhere in the
document, or to a field the selector ignores, notifies nobody. Inside one
``client.batch()`` each observer is notified at most once.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from ..core.subscribable import Subscribable, iterate_latest
from ..values import MISSING, replace_equal_deep
from .options import ObserverOptions, QueryOptions, resolve_stale_time, resolve_trigger
from .state import Action, FetchStatus, Status

if TYPE_CHECKING:
    from ..client import QueryClient
    from ..clock import TimerHandle
    from .query import Query

DEFAULT_NOTIFY_PROPS = ("data", "error", "status", "fetch_status", "is_stale", "is_placeholder_data")


@dataclass(frozen=True, slots=True)
class QueryObserverResult:
    """What an observer sees. ``data`` is ``None`` while there is none (see ``status``)."""

    data: Any
    error: BaseException | None
    status: Status
    fetch_status: FetchStatus
    is_stale: bool
    is_placeholder_data: bool
    data_updated_at: float
    error_updated_at: float
    error_update_count: int
    failure_count: int
    failure_reason: BaseException | None
    is_invalidated: bool

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
    def is_fetching(self) -> bool:
        return self.fetch_status == "fetching"

    @property
    def is_paused(self) -> bool:
        return self.fetch_status == "paused"

    @property
    def is_loading(self) -> bool:
        return self.is_pending and self.is_fetching

    @property
    def is_refetching(self) -> bool:
        return self.is_fetching and not self.is_pending


Listener = Callable[[QueryObserverResult], None]


class QueryObserver(Subscribable[Listener]):
    """Create through ``client.observe(key, query_fn, ...)`` or directly with options."""

    def __init__(self, client: QueryClient, options: QueryOptions, observer_options: ObserverOptions | None = None):
        super().__init__()
        self.client = client
        self.options = options
        self.observer_options = observer_options or ObserverOptions()
        self.query: Query = client.query_cache.build(client, options)
        self._sel_fn: Callable[[Any], Any] | None = None
        self._sel_in: Any = MISSING
        self._sel_out: Any = MISSING
        self._last_data: Any = None
        self._placeholder: tuple[Any, Any] | None = None  # (option, data) while shown: memoised
        self._result = self._create_result()
        self._stale_timer: TimerHandle | None = None
        self._interval_timer: TimerHandle | None = None
        self._debounce_timer: TimerHandle | None = None
        self._throttle_timer: TimerHandle | None = None
        self._throttle_pending = False
        self._mounted = False

    # -- result ------------------------------------------------------------------------------
    def is_enabled(self) -> bool:
        return self.observer_options.enabled

    def get_current_result(self) -> QueryObserverResult:
        return self._result

    def _stale_time(self) -> float:
        return resolve_stale_time(self.options.stale_time, self.query)

    def _create_result(self) -> QueryObserverResult:
        q = self.query
        st = q.state
        opts = self.observer_options
        data: Any = st.data
        status = st.status
        placeholder = False
        if data is MISSING and status == "pending" and opts.placeholder_data is not None:
            ph = opts.placeholder_data
            if self._placeholder is not None and self._placeholder[0] is ph:
                data = self._placeholder[1]  # as TanStack: the same option keeps its data
            else:
                data = ph(self._last_data) if callable(ph) else ph
                if self._placeholder is not None:  # an equal new one keeps the previous object
                    data = replace_equal_deep(self._placeholder[1], data)
            self._placeholder = (ph, data)
            placeholder = data is not None
            if placeholder:
                status = "success"
            else:
                data = MISSING
        if not placeholder:
            self._placeholder = None
        if data is not MISSING and opts.select is not None:  # placeholders too, as TanStack
            if self._sel_fn is opts.select and self._sel_in is data:
                data = self._sel_out
            else:
                out = opts.select(data)
                out = replace_equal_deep(self._sel_out, out) if self._sel_out is not MISSING else out
                self._sel_fn, self._sel_in, self._sel_out = opts.select, data, out
                data = out
        if data is MISSING:
            data = None
        return QueryObserverResult(
            data=data,
            error=st.error,
            status=status,
            fetch_status=st.fetch_status,
            is_stale=self.is_enabled() and q.is_stale_by_time(self._stale_time()),  # as TanStack
            is_placeholder_data=placeholder,
            data_updated_at=st.data_updated_at,
            error_updated_at=st.error_updated_at,
            error_update_count=st.error_update_count,
            failure_count=st.fetch_failure_count,
            failure_reason=st.fetch_failure_reason,
            is_invalidated=st.is_invalidated,
        )

    def _changed(self, prev: QueryObserverResult, new: QueryObserverResult) -> bool:
        props = self.observer_options.notify_on_change_props or DEFAULT_NOTIFY_PROPS
        for p in props:
            a, b = getattr(prev, p), getattr(new, p)
            if p == "data":
                if a is not b:
                    return True
            elif a != b:
                return True
        return False

    def _update_result(self) -> None:
        prev = self._result
        new = self._create_result()
        if new.data is not None and not new.is_placeholder_data:
            self._last_data = new.data
        self._result = new
        self._schedule_stale_timer()
        if self._changed(prev, new):
            self._request_notify()
        if prev.data is not new.data:
            self._schedule_interval()

    def _request_notify(self) -> None:
        opts = self.observer_options
        clock = self.client.clock
        if opts.debounce:
            if self._debounce_timer is not None:
                self._debounce_timer.cancel()
            self._debounce_timer = clock.call_later(opts.debounce, self._debounce_end)
        elif opts.throttle:
            if self._throttle_timer is None:
                self.client.notify_manager.schedule(self, self._notify)  # leading edge
                self._throttle_timer = clock.call_later(opts.throttle, self._throttle_end)
            else:
                self._throttle_pending = True
        else:
            self.client.notify_manager.schedule(self, self._notify)

    def _debounce_end(self) -> None:
        self._debounce_timer = None
        self.client.notify_manager.schedule(self, self._notify)

    def _throttle_end(self) -> None:
        self._throttle_timer = None
        if self._throttle_pending:
            self._throttle_pending = False
            self.client.notify_manager.schedule(self, self._notify)  # trailing edge
            if self.observer_options.throttle:
                self._throttle_timer = self.client.clock.call_later(self.observer_options.throttle, self._throttle_end)

    def _notify(self) -> None:
        result = self._result
        for listener in list(self._listeners):
            listener(result)
        self.client.query_cache._observer_results_updated(self.query, self)

    def _on_query_update(self, action: Action) -> None:
        self._update_result()

    # -- lifecycle ---------------------------------------------------------------------------
    def on_subscribe(self) -> None:
        if len(self._listeners) == 1 and not self._mounted:
            self._mount()

    def on_unsubscribe(self) -> None:
        if not self._listeners:
            self.destroy()

    def _mount(self) -> None:
        self._mounted = True
        if self.query.client.query_cache.get(self.query.query_hash) is not self.query:
            self.query = self.client.query_cache.build(self.client, self.options)
        self.query.add_observer(self)
        self._update_result()
        if self._should_fetch_on("mount"):
            self.query._start_background_fetch()
        self._schedule_interval()

    def destroy(self) -> None:
        """Leave the query (its gc timer starts when no observer is left) and stop timers."""
        self._mounted = False
        self._clear_timers()
        self.query.remove_observer(self)

    def _should_fetch_on(self, event: str) -> bool:
        if not self.is_enabled():
            return False
        if event == "mount" and not self.query.state.has_data and self.query.state.status != "error":
            return True
        opts = self.observer_options
        trigger = {"mount": opts.refetch_on_mount, "focus": opts.refetch_on_focus,
                   "reconnect": opts.refetch_on_reconnect}[event]
        value = resolve_trigger(trigger, self.query)
        if value == "always":
            return True
        return bool(value) and self.query.is_stale_by_time(self._stale_time())

    # -- timers ------------------------------------------------------------------------------
    def _clear_timers(self) -> None:
        for t in (self._stale_timer, self._interval_timer, self._debounce_timer, self._throttle_timer):
            if t is not None:
                t.cancel()
        self._stale_timer = self._interval_timer = self._debounce_timer = self._throttle_timer = None

    def _schedule_stale_timer(self) -> None:
        if self._stale_timer is not None:
            self._stale_timer.cancel()
            self._stale_timer = None
        if not self._mounted or self._result.is_stale or not self.is_enabled():
            return
        stale_time = self._stale_time()
        if math.isinf(stale_time):
            return
        due = self.query.state.data_updated_at + stale_time - self.client.clock.now()
        self._stale_timer = self.client.clock.call_later(max(0.0, due) + 1e-6, self._on_stale)

    def _on_stale(self) -> None:
        self._stale_timer = None
        self._update_result()

    def _interval(self) -> float | None:
        opt = self.observer_options.refetch_interval
        value = opt(self.query.state.data if self.query.state.has_data else None, self.query) if callable(opt) else opt
        if value is False or value is None or not self.is_enabled():
            return None
        value = float(value)
        return value if value > 0 and not math.isinf(value) else None

    def _schedule_interval(self) -> None:
        if self._interval_timer is not None:
            self._interval_timer.cancel()
            self._interval_timer = None
        interval = self._interval() if self._mounted else None
        if interval is not None:
            self._interval_timer = self.client.clock.call_later(interval, self._on_interval)

    def _on_interval(self) -> None:
        self._interval_timer = None
        focused = self.client.focus_manager.is_focused() or self.observer_options.refetch_interval_in_background
        online = self.client.online_manager.is_online() or self.options.network_mode.value == "always"
        if focused and online:  # intervals pause while offline or unfocused
            self.query._start_background_fetch()
        self._schedule_interval()

    # -- actions -----------------------------------------------------------------------------
    async def refetch(self, *, cancel_refetch: bool = True) -> QueryObserverResult:
        """Fetch now (even when disabled) and return the new result; errors are in the result."""
        try:
            await self.query.fetch(cancel_refetch=cancel_refetch)
        except Exception:
            if self.observer_options.throw_on_error:
                raise
        self._update_result()  # also when not subscribed (the query does not update it then)
        return self._result

    def set_observer_options(self, **changes: Any) -> None:
        """Change this observer's options; enabling a mounted observer fetches when its data is
        missing or stale (as on mount)."""
        was_enabled = self.is_enabled()
        self.observer_options = replace(self.observer_options, **changes)
        self._update_result()
        self._schedule_interval()
        if self._mounted and not was_enabled and self._should_fetch_on("mount"):
            self.query._start_background_fetch()

    def __aiter__(self) -> AsyncIterator[QueryObserverResult]:
        """Yield the current result, then each new one (slow consumers skip to the latest)."""
        return iterate_latest(self, self.get_current_result)
