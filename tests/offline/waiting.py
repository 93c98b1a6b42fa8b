"""Waiting helpers shared by the offline tests (on replica watches, never by polling)."""

from __future__ import annotations

import asyncio
from typing import Any

from crdtsync.replica import Replica


async def until(replica: Replica, key: tuple[Any, ...], value: Any, timeout: float = 3.0) -> None:
    """Wait (on the replica's watch, not by polling) until ``key`` holds ``value``."""
    if replica.read(key) == value:
        return
    route = replica.route(key)
    fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    stop = replica.watch(route.doc_id, route.path,
                         lambda _o: fut.done() or (replica.read(key) == value and fut.set_result(None)))
    try:
        await asyncio.wait_for(fut, timeout)
    finally:
        stop()
