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
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ..replica import Replica
from ..sync.provider import SyncProvider
from ..sync.status import ConnectionState
from .channel import LeaderTask


def relay_leader_task(
    make_provider: Callable[[Replica], SyncProvider],
    *,
    on_status: Callable[[bool], None] | None = None,
    doc_filter: Callable[[str], bool] = lambda doc_id: True,
) -> LeaderTask:
    """A leader task that keeps the leader's replica synced with a relay. See the module doc."""

    async def run(replica: Replica) -> None:
        provider = make_provider(replica)
        unsubs: list[Callable[[], None]] = []
        if on_status is not None:
            report = on_status
            unsubs.append(provider.on_status(lambda st: report(st.state is ConnectionState.CONNECTED)))

        def add(doc_id: str) -> None:
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
            if on_status is not None:
                on_status(False)

    return run
