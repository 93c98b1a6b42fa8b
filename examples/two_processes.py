"""Two processes share one converged cache with no server: run ``python examples/two_processes.py``.

The parent opens a :class:`~crdtsync.offline.LocalChannel`, writes a todo, then starts a
second Python process (this file with ``--child``). The child joins the channel, has the
parent's todo at once (state-vector catch-up on join), ticks it off and adds its own; the
parent sees both through its own QueryClient. Both exit 0 within a few seconds.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
from typing import Any

from crdtsync import QueryClient
from crdtsync.offline import LocalChannel
from crdtsync.values import MISSING

TIMEOUT = 10.0


async def until(client: QueryClient, key: tuple[Any, ...], predicate: Any) -> Any:
    """Wait for the replica's change notification (no polling) until ``predicate(data)``.

    Reads ``replica.read`` rather than ``client.get_query_data``: inside a replica watch the
    query's own state may not have been refreshed yet (watchers run in no set order)."""
    replica = client.replica
    route = replica.route(key)
    fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    def check(_origin: object = None) -> None:
        data = replica.read(key)
        if not fut.done() and data is not MISSING and predicate(data):
            fut.set_result(data)

    stop = replica.watch(route.doc_id, route.path, check)
    check()
    try:
        return await asyncio.wait_for(fut, TIMEOUT)
    finally:
        stop()


async def parent(channel_name: str, base: str) -> int:
    client = QueryClient()
    channel = LocalChannel(channel_name, client.replica, base_dir=base)
    await channel.start()
    await channel.wait_ready(TIMEOUT)
    client.set_query_data(("todos", 1), {"title": "buy milk", "done": False})
    print(f"[parent {os.getpid()}] {channel.status.role.value}; wrote todo 1")
    child = subprocess.Popen([sys.executable, __file__, "--child", channel_name, base])
    try:
        done = await until(client, ("todos", 1), lambda t: t["done"])
        other = await until(client, ("todos", 2), lambda t: True)
        print(f"[parent] sees todo 1 = {done}")
        print(f"[parent] sees todo 2 = {other}")
        code = await asyncio.to_thread(child.wait, TIMEOUT)
    finally:
        if child.poll() is None:
            child.kill()
        await channel.close()
    print(f"[parent] child exited with {code}; converged")
    return code


async def child(channel_name: str, base: str) -> int:
    client = QueryClient()
    channel = LocalChannel(channel_name, client.replica, base_dir=base)
    await channel.start()
    await channel.wait_ready(TIMEOUT)
    todo = client.get_query_data(("todos", 1))  # already here: ready means caught up
    print(f"[child {os.getpid()}] {channel.status.role.value}; has todo 1 = {todo}")
    client.set_query_data(("todos", 1), lambda t: {**t, "done": True})
    client.set_query_data(("todos", 2), {"title": "walk the dog", "done": False})
    await channel.close()  # the leader already has both edits: the socket is ordered
    return 0 if todo is not None else 1


def main() -> int:
    if len(sys.argv) >= 4 and sys.argv[1] == "--child":
        return asyncio.run(child(sys.argv[2], sys.argv[3]))
    with tempfile.TemporaryDirectory(prefix="crdtsync-example-") as base:
        return asyncio.run(parent(f"two-processes-{os.getpid()}", base))


if __name__ == "__main__":
    sys.exit(main())
