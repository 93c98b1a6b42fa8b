"""Connection-aware sync: one observable status from the local channel, the relay and fetches.

::

    monitor = ConnectionMonitor(client, channel=channel, relay=True, probe=ping_api)
    monitor.subscribe(lambda st: print(st.state, st.last_sync_at))
    provider_status_callback = monitor.set_relay_connected   # wire your SyncProvider here

The state is a pure function of the signals (:func:`classify`, tested on its own):

- ``ONLINE``: every configured network path works (relay connected if there is one, fetches
  not failing) and the local channel, if any, is connected;
- ``DEGRADED``: some path works and some does not (relay down but fetches fine, fetches
  failing but relay up, or the local channel reconnecting);
- ``OFFLINE``: no network path works (``failures_to_offline`` fetches failed in a row, and
  the relay, if configured, is down).

Cached data stays readable in every state: nothing here touches the documents.

With ``drive_online_manager`` (default) the monitor also tells the client: entering
``OFFLINE`` calls ``client.online_manager.set_online(False)`` (fetches pause instead of
failing again and again), leaving it calls ``set_online(True)``, on which the client resumes
each paused fetch and refetches each stale query that asks for ``refetch_on_reconnect``, once
each: no storm. Going offline is only done when there is a way back: a relay whose reconnect
reports ``set_relay_connected(True)``, or a ``probe`` (an async callable returning True when
the network answers) that the monitor runs every ``probe_interval`` seconds while offline.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..clock import Clock, TimerHandle
from ..query.events import QueryUpdated
from ..query.state import Error, Failed, Success
from .channel import ChannelStatus, LocalChannel

if TYPE_CHECKING:
    from ..client import QueryClient


class Connectivity(enum.Enum):
    ONLINE = "online"
    DEGRADED = "degraded"
    OFFLINE = "offline"


@dataclass(frozen=True, slots=True)
class ConnectivityStatus:
    """A snapshot of the connection. ``local`` / ``relay``: None when not configured.
    ``last_sync_at``: the last time data came from the network (a fetch success or a relay
    (re)connection), on the client's clock."""

    state: Connectivity
    local: bool | None
    relay: bool | None
    fetch_failures: int
    last_sync_at: float | None
    reason: str = ""


def classify(*, local: bool | None, relay: bool | None, fetch_ok: bool) -> tuple[Connectivity, str]:
    """The connectivity for these signals, and why. Pure."""
    paths = [fetch_ok] if relay is None else [fetch_ok, relay]
    down = [name for name, ok in zip(("fetches failing", "relay down"), paths, strict=False) if not ok]
    if not any(paths):
        return Connectivity.OFFLINE, ", ".join(down)
    if down:
        return Connectivity.DEGRADED, ", ".join(down)
    if local is False:
        return Connectivity.DEGRADED, "local channel reconnecting"
    return Connectivity.ONLINE, ""


def _is_network_failure(err: BaseException) -> bool:
    return getattr(err, "retryable", True) is not False  # a ClientError (4xx) is not the network


class ConnectionMonitor:
    """Watches ``client``'s fetches, an optional :class:`LocalChannel` and the relay status
    you report; see the module docstring. Call :meth:`close` when done."""

    def __init__(
        self,
        client: QueryClient,
        *,
        channel: LocalChannel | None = None,
        relay: bool = False,
        failures_to_offline: int = 3,
        drive_online_manager: bool = True,
        probe: Callable[[], Awaitable[bool]] | None = None,
        probe_interval: float = 5.0,
        clock: Clock | None = None,
    ) -> None:
        if failures_to_offline < 1 or probe_interval <= 0:
            raise ValueError("failures_to_offline must be >= 1 and probe_interval > 0")
        self.client = client
        self.clock: Clock = clock or client.clock
        self.failures_to_offline = failures_to_offline
        self.drive_online_manager = drive_online_manager
        self.probe = probe
        self.probe_interval = probe_interval
        self._relay: bool | None = False if relay else None
        self._local: bool | None = None
        self._failures = 0
        self._last_sync: float | None = None
        self._listeners: list[Callable[[ConnectivityStatus], None]] = []
        self._unsubs: list[Callable[[], None]] = [client.query_cache.subscribe(self._on_cache_event)]
        self._probe_timer: TimerHandle | None = None
        self._probe_task: asyncio.Task[None] | None = None
        self.probes = 0
        if channel is not None:
            self._local = channel.status.connected
            self._unsubs.append(channel.subscribe(self._on_channel))
        self._status = self._compute()

    # -- signals -----------------------------------------------------------------------------
    def set_relay_connected(self, connected: bool) -> None:
        """Report the relay connection's state (from your SyncProvider's status events)."""
        if connected and not self._relay:
            self._last_sync = self.clock.now()
        self._relay = connected
        self._update()

    def report_fetch_success(self) -> None:
        """Report that the network answered (the monitor also sees query fetches itself)."""
        self._failures = 0
        self._last_sync = self.clock.now()
        self._update()

    def report_fetch_failure(self) -> None:
        self._failures += 1
        self._update()

    def _on_cache_event(self, event: Any) -> None:
        if not isinstance(event, QueryUpdated):
            return
        action = event.action
        if isinstance(action, Success) and not action.manual:
            self.report_fetch_success()
        elif isinstance(action, (Error, Failed)) and _is_network_failure(action.error):
            self.report_fetch_failure()

    def _on_channel(self, st: ChannelStatus) -> None:
        self._local = st.connected
        self._update()

    # -- state -------------------------------------------------------------------------------
    @property
    def status(self) -> ConnectivityStatus:
        return self._status

    def subscribe(self, listener: Callable[[ConnectivityStatus], None]) -> Callable[[], None]:
        """Call ``listener(status)`` whenever the status changes."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    async def wait_for(self, state: Connectivity, timeout: float | None = None) -> ConnectivityStatus:
        """Return the status once it is ``state`` (at once if it already is)."""
        if self._status.state is state:
            return self._status
        fut: asyncio.Future[ConnectivityStatus] = asyncio.get_running_loop().create_future()

        def check(st: ConnectivityStatus) -> None:
            if st.state is state and not fut.done():
                fut.set_result(st)

        unsub = self.subscribe(check)
        try:
            return await asyncio.wait_for(fut, timeout)
        finally:
            unsub()

    def _compute(self) -> ConnectivityStatus:
        state, reason = classify(local=self._local, relay=self._relay,
                                 fetch_ok=self._failures < self.failures_to_offline)
        return ConnectivityStatus(state, self._local, self._relay, self._failures, self._last_sync, reason)

    def _update(self) -> None:
        old, new = self._status, self._compute()
        if new == old:
            return
        self._status = new
        if new.state is not old.state:
            self._drive(old.state, new.state)
        for listener in list(self._listeners):
            listener(new)

    def _can_recover(self) -> bool:
        return self._relay is not None or self.probe is not None

    def _drive(self, old: Connectivity, new: Connectivity) -> None:
        om = self.client.online_manager
        if new is Connectivity.OFFLINE:
            if self.drive_online_manager and self._can_recover():
                om.set_online(False)
            self._schedule_probe()
        elif old is Connectivity.OFFLINE:
            self._cancel_probe()
            if self.drive_online_manager:
                om.set_online(True)

    # -- probing -----------------------------------------------------------------------------
    def _schedule_probe(self) -> None:
        if self.probe is not None and self._probe_timer is None:
            self._probe_timer = self.clock.call_later(self.probe_interval, self._fire_probe)

    def _cancel_probe(self) -> None:
        if self._probe_timer is not None:
            self._probe_timer.cancel()
            self._probe_timer = None

    def _fire_probe(self) -> None:
        self._probe_timer = None
        self._probe_task = asyncio.get_running_loop().create_task(self._run_probe())

    async def _run_probe(self) -> None:
        assert self.probe is not None
        self.probes += 1
        try:
            ok = await self.probe()
        except Exception:
            ok = False
        if ok:
            self.report_fetch_success()
        elif self._status.state is Connectivity.OFFLINE:
            self._schedule_probe()

    def close(self) -> None:
        """Stop watching (the online manager is left as it is)."""
        for unsub in self._unsubs:
            unsub()
        self._unsubs.clear()
        self._cancel_probe()
        if self._probe_task is not None and not self._probe_task.done():
            self._probe_task.cancel()
