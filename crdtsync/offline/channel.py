"""Cross-process sync on one machine: :class:`LocalChannel`.

Every process that opens a channel with the same name keeps its
:class:`~crdtsync.replica.Replica` converged with the others, with no relay and no extra
server process::

    channel = LocalChannel("my-app", client.replica)
    await channel.start()
    await channel.wait_ready(timeout=5)   # the current state of the others is here now
    ...
    await channel.close()

How: the processes elect a leader with a file lock (:mod:`.election`); the leader listens on a
Unix socket (:mod:`.paths` says where) and every other process connects to it. The leader's
replica is the hub: an update from one member is applied there (tagged with that member's
origin) and, like any transaction of the leader, sent to every other member
(:mod:`.session`). When the leader exits or is killed, the kernel hands the lock to one
waiting process, which opens a new socket; the others see the old one close, reconnect and
catch up by state vector, so nothing written by a live process is lost.

``leader_task(replica)`` (optional) runs only in the leader, for as long as it leads, and is
cancelled when leadership ends: give it the one relay connection all processes share (a
:class:`SyncProvider` loop, say). ``subscribe(callback)`` reports :class:`ChannelStatus`
changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import itertools
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from ..clock import Clock, SystemClock
from ..origins import Origin, remote_origin
from ..replica import Replica
from .election import LeaderLock
from .paths import LOCK_NAME, SOCKET_NAME, channel_dir
from .session import Side, SyncSession
from .wire import DEFAULT_MAX_FRAME

log = logging.getLogger("crdtsync.offline")

HUB_ORIGIN = remote_origin("local:hub")
LeaderTask = Callable[[Replica], Awaitable[None]]


class Role(enum.Enum):
    STARTING = "starting"  # not yet leader nor connected
    LEADER = "leader"  # holds the lock and runs the hub
    FOLLOWER = "follower"  # connected to the leader's hub
    RECONNECTING = "reconnecting"  # lost the hub; looking for the new leader
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class ChannelStatus:
    """What the channel is doing. ``connected``: this process shares state with the others
    right now (a leader always does). ``peers``: members connected to this leader's hub."""

    role: Role
    peers: int = 0
    synced_at: float | None = None

    @property
    def connected(self) -> bool:
        return self.role in (Role.LEADER, Role.FOLLOWER)


@dataclass(frozen=True, slots=True)
class ChannelLimits:
    """Every limit of the local channel (all configurable, all tested).

    ``max_frame``: largest frame accepted. ``max_buffer``: bytes queued to one slow peer before
    its connection is dropped (it resyncs when it reconnects). ``reconnect_min`` /
    ``reconnect_max``: seconds between attempts to reach a new hub (doubling).
    """

    max_frame: int = DEFAULT_MAX_FRAME
    max_buffer: int = 64 << 20
    reconnect_min: float = 0.005
    reconnect_max: float = 0.1

    def __post_init__(self) -> None:
        if self.max_buffer < 1 or self.reconnect_min <= 0 or self.reconnect_max < self.reconnect_min:
            raise ValueError("invalid ChannelLimits")


class _Link:
    """A session plus the socket writer it sends on."""

    def __init__(self, session: SyncSession, writer: asyncio.StreamWriter, limits: ChannelLimits):
        self.session = session
        self.writer = writer
        self.limits = limits

    def flush(self) -> None:
        data = self.session.data_to_send()
        if not data or self.writer.is_closing():
            return
        self.writer.write(data)
        if self.writer.transport.get_write_buffer_size() > self.limits.max_buffer:
            log.warning("local channel: peer is %d bytes behind (max_buffer); dropping it, it will resync",
                        self.writer.transport.get_write_buffer_size())
            self.session.failed = "slow consumer"
            self.writer.transport.abort()
        elif self.session.failed is not None:
            self.writer.close()


class LocalChannel:
    """Joins ``replica`` to every other process on channel ``name``. See the module docstring."""

    def __init__(
        self,
        name: str,
        replica: Replica,
        *,
        base_dir: str | os.PathLike[str] | None = None,
        leader_task: LeaderTask | None = None,
        limits: ChannelLimits | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.name = name
        self.replica = replica
        self.dir: Path = channel_dir(name, base=base_dir)
        self.socket_path = self.dir / SOCKET_NAME
        self.limits = limits or ChannelLimits()
        self.clock: Clock = clock or SystemClock()
        self._leader_task_fn = leader_task
        self._lock = LeaderLock(self.dir / LOCK_NAME)
        self._status = ChannelStatus(Role.STARTING)
        self._listeners: list[Callable[[ChannelStatus], None]] = []
        self._links: set[_Link] = set()
        self._member: _Link | None = None
        self._server: asyncio.AbstractServer | None = None
        self._socket_ino: int | None = None
        self._ready = asyncio.Event()
        self._leader_event = asyncio.Event()
        self._closed = asyncio.Event()
        self._main: asyncio.Task[None] | None = None
        self._leader_task: asyncio.Task[None] | None = None
        self._ids = itertools.count(1)
        self._stop_updates: Callable[[], None] | None = None
        self.leaderships = 0

    # -- public ------------------------------------------------------------------------------
    @property
    def status(self) -> ChannelStatus:
        return self._status

    @property
    def is_leader(self) -> bool:
        return self._status.role is Role.LEADER

    def subscribe(self, listener: Callable[[ChannelStatus], None]) -> Callable[[], None]:
        """Call ``listener(status)`` on every status change. Returns the unsubscribe function."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    async def start(self) -> None:
        """Begin: become the leader if nobody is, else join the leader. Returns at once; await
        :meth:`wait_ready` for the current state."""
        if self._main is not None:
            return
        loop = asyncio.get_running_loop()
        self._stop_updates = self.replica.on_update(self._on_local_update)

        def acquired() -> None:
            loop.call_soon_threadsafe(self._on_lock)

        self._lock.start(acquired)
        self._main = loop.create_task(self._run(), name=f"crdtsync-channel:{self.name}")

    async def wait_ready(self, timeout: float | None = None) -> None:
        """Return once this process leads, or has received the leader's state after joining.
        Raises ``TimeoutError`` after ``timeout`` seconds."""
        await asyncio.wait_for(self._ready.wait(), timeout)

    async def wait_role(self, role: Role, timeout: float | None = None) -> None:
        """Return once the channel is in ``role`` (a test helper as much as an API)."""
        if self._status.role is role:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def check(st: ChannelStatus) -> None:
            if st.role is role and not fut.done():
                fut.set_result(None)

        unsub = self.subscribe(check)
        try:
            await asyncio.wait_for(fut, timeout)
        finally:
            unsub()

    async def close(self) -> None:
        """Leave the channel: stop the hub or the connection, give up the lock. Idempotent."""
        if self._closed.is_set():
            return
        self._closed.set()
        if self._leader_task is not None:  # first, so what it writes last (its relay status) still goes out
            self._leader_task.cancel()
            with contextlib.suppress(BaseException):
                await self._leader_task
        if self._stop_updates is not None:
            self._stop_updates()
        if self._main is not None:
            self._main.cancel()
            with contextlib.suppress(BaseException):
                await self._main
        await self._stop_hub()
        if self._member is not None:
            self._member.writer.close()
        self._lock.release()
        self._set(ChannelStatus(Role.CLOSED))

    # -- internals ---------------------------------------------------------------------------
    def _set(self, status: ChannelStatus) -> None:
        if status == self._status:
            return
        self._status = status
        for listener in list(self._listeners):
            try:
                listener(status)
            except Exception:  # a listener's bug must not break the channel
                log.exception("local channel status listener failed")

    def _on_lock(self) -> None:
        if self._closed.is_set():
            self._lock.release()
            return
        self._leader_event.set()
        if self._member is not None:  # stop following: we lead now
            self._member.writer.close()

    def _on_local_update(self, doc_id: str, update: bytes, origin: Origin) -> None:
        links = list(self._links) if self._member is None else [self._member]
        for link in links:
            if link.session.wants(origin):
                link.session.local_update(doc_id, update)
                link.flush()

    async def _run(self) -> None:
        delay = self.limits.reconnect_min
        while not self._closed.is_set():
            if self._leader_event.is_set():
                await self._lead()
                return
            connected = await self._follow()
            if connected:
                delay = self.limits.reconnect_min
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._leader_event.wait(), delay)
            delay = min(delay * 2, self.limits.reconnect_max)

    async def _lead(self) -> None:
        self.leaderships += 1
        tmp = self.dir / f"hub.{os.getpid()}.sock"
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        self._server = await asyncio.start_unix_server(self._serve, path=str(tmp))
        self._socket_ino = tmp.stat().st_ino
        os.replace(tmp, self.socket_path)  # atomic: joiners never see a missing socket
        log.info("local channel %r: this process (pid %d) is the leader", self.name, os.getpid())
        self._set(ChannelStatus(Role.LEADER, peers=len(self._links), synced_at=self.clock.now()))
        self._ready.set()
        if self._leader_task_fn is not None:
            self._leader_task = asyncio.get_running_loop().create_task(self._run_leader_task())
        await self._closed.wait()

    async def _run_leader_task(self) -> None:
        assert self._leader_task_fn is not None
        try:
            await self._leader_task_fn(self.replica)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("local channel %r: leader task failed", self.name)

    async def _stop_hub(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for link in list(self._links):
            link.writer.close()
        with contextlib.suppress(OSError):
            if self.socket_path.stat().st_ino == self._socket_ino:
                self.socket_path.unlink()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 1.0)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sid = next(self._ids)
        session = SyncSession(self.replica, side=Side.HUB, origin=remote_origin(f"local:{sid}"),
                              max_frame=self.limits.max_frame)
        link = _Link(session, writer, self.limits)
        self._links.add(link)
        self._set(ChannelStatus(Role.LEADER, peers=len(self._links), synced_at=self._status.synced_at))
        try:
            session.start()
            link.flush()
            await self._pump(reader, link)
        finally:
            self._links.discard(link)
            writer.close()
            if self._status.role is Role.LEADER:
                self._set(ChannelStatus(Role.LEADER, peers=len(self._links), synced_at=self._status.synced_at))

    async def _pump(self, reader: asyncio.StreamReader, link: _Link) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while link.session.failed is None:
                data = await reader.read(1 << 16)
                if not data:
                    return
                link.session.receive_bytes(data)
                link.flush()

    async def _follow(self) -> bool:
        """One connection to the hub, until it closes. False when it could not connect."""
        try:
            reader, writer = await asyncio.open_unix_connection(str(self.socket_path))
        except OSError:
            return False
        if self._leader_event.is_set():
            writer.close()
            return True

        def synced() -> None:
            self._set(ChannelStatus(Role.FOLLOWER, synced_at=self.clock.now()))
            self._ready.set()

        session = SyncSession(self.replica, side=Side.MEMBER, origin=HUB_ORIGIN,
                              max_frame=self.limits.max_frame, on_synced=synced)
        link = _Link(session, writer, self.limits)
        self._member = link
        try:
            session.start()
            link.flush()
            await self._pump(reader, link)
        finally:
            self._member = None
            writer.close()
            if not self._closed.is_set():
                self._set(ChannelStatus(Role.RECONNECTING, synced_at=self._status.synced_at))
        return True

    def __repr__(self) -> str:
        return f"<LocalChannel {self.name!r} {self._status.role.value}>"


