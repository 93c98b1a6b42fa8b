"""The one relay connection of a channel: :func:`relay_leader_task`.

Pass it as ``LocalChannel(..., leader_task=relay_leader_task(make_provider))``. Only the
leader runs it: it builds a :class:`~crdtsync.sync.provider.SyncProvider` for the leader's
replica, subscribes every document (and each new one, via ``Replica.on_doc``) that
``doc_filter`` accepts, and keeps it open for as long as the process leads. Followers'
updates reach the leader's replica through the hub, so the provider sends them on; relay
updates applied to the leader's replica reach the followers the same way. When leadership
moves, the new leader opens its own provider and syncs by state vector: nothing is lost.

``on_status(connected)`` (a :class:`~crdtsync.offline.ConnectionMonitor`'s
``set_relay_connected``, say) hears the provider's connection state, and ``False`` when the
task ends.

Followers hear it too: the leader publishes the relay state in the local-only document
:data:`CHANNEL_STATUS_DOC` (never sent to the relay), which the channel syncs to every member
like any other document. A follower calls :func:`follow_relay_status` (with the same callback
it would give the leader task) to get ``True`` / ``False`` as the leader's connection changes,
and ``False`` when no leader is publishing (the leader left and the next one has not connected).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

from ..origins import LOCAL
from ..replica import Replica
from ..sync.provider import SyncProvider
from ..sync.status import ConnectionState
from .channel import LeaderTask

CHANNEL_STATUS_DOC = "crdtsync:channel"  # local-only: a relay_leader_task never subscribes "crdtsync:" ids
_RELAY_PATH = ("relay",)


def publish_relay_status(replica: Replica, connected: bool, leader: str) -> None:
    """Record the leader's relay state in the channel's status document."""
    replica.write_path(CHANNEL_STATUS_DOC, _RELAY_PATH, {"connected": connected, "leader": leader}, origin=LOCAL)


def follow_relay_status(replica: Replica, callback: Callable[[bool], None]) -> Callable[[], None]:
    """Call ``callback(connected)`` whenever the channel leader's relay state changes (and once
    now). Returns the function that stops following."""
    last: list[bool | None] = [None]

    def check(_origin: object = None) -> None:
        value = replica.read_path(CHANNEL_STATUS_DOC, _RELAY_PATH)
        connected = bool(isinstance(value, dict) and value.get("connected") is True)
        if connected != last[0]:
            last[0] = connected
            callback(connected)

    stop = replica.watch(CHANNEL_STATUS_DOC, _RELAY_PATH, check)
    check()
    return stop


def relay_leader_task(
    make_provider: Callable[[Replica], SyncProvider],
    *,
    on_status: Callable[[bool], None] | None = None,
    doc_filter: Callable[[str], bool] = lambda doc_id: True,
) -> LeaderTask:
    """A leader task that keeps the leader's replica synced with a relay. See the module doc."""

    async def run(replica: Replica) -> None:
        provider = make_provider(replica)
        leader = f"{os.getpid()}:{provider.name}"
        unsubs: list[Callable[[], None]] = []

        def report(connected: bool) -> None:
            publish_relay_status(replica, connected, leader)
            if on_status is not None:
                on_status(connected)

        unsubs.append(provider.on_status(lambda st: report(st.state is ConnectionState.CONNECTED)))

        def add(doc_id: str) -> None:
            if doc_id.startswith("crdtsync:"):
                return  # local-only documents (the channel's own status) never go to the relay
            if doc_filter(doc_id) and doc_id not in provider.subscriptions:
                provider.subscribe(doc_id)

        unsubs.append(replica.on_doc(add))
        try:
            async with provider:
                for doc_id in replica.doc_ids():
                    add(doc_id)
                await asyncio.Event().wait()  # until leadership ends (cancelled)
        finally:
            for unsub in unsubs:
                unsub()
            report(False)

    return run
