"""A process on a local channel, driven by tests over stdin/stdout (one JSON object a line).

Commands: ``{"id": n, "op": ...}`` with op ``write`` (key, value), ``wait`` (key, value,
timeout: reply once the replica holds value at key), ``dump``, ``status``, ``wait_connected``
(timeout), ``flush``, ``exit``. Replies carry the same ``id``. Unprompted events
(``{"event": "role", ...}``) report role changes with ``time.monotonic()`` (system-wide on
Linux, so the test can compare it with its own clock).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from typing import Any

from crdtsync.offline import LocalChannel
from crdtsync.offline.persist import ReplicaPersister
from crdtsync.replica import Replica
from crdtsync.values import MISSING


def emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def wait_value(replica: Replica, key: list[Any], value: Any, timeout: float) -> bool:
    if replica.read(key) == value:
        return True
    route = replica.route(key)
    fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def check(_origin: Any) -> None:
        if replica.read(key) == value and not fut.done():
            fut.set_result(None)

    stop = replica.watch(route.doc_id, route.path, check)
    try:
        await asyncio.wait_for(fut, timeout)
        return True
    except TimeoutError:
        return False
    finally:
        stop()


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--channel", required=True)
    ap.add_argument("--base", required=True)
    ap.add_argument("--db")
    ap.add_argument("--throttle", type=float, default=0.05)
    args = ap.parse_args()
    replica = Replica()
    persister = None
    restored = None
    if args.db:
        persister = ReplicaPersister(replica, args.db, throttle=args.throttle)
        restored = (await persister.open()).outcome.value
    channel = LocalChannel(args.channel, replica, base_dir=args.base)
    channel.subscribe(lambda st: emit({"event": "role", "role": st.role.value, "at": time.monotonic()}))
    await channel.start()
    await channel.wait_ready(10)
    emit({"event": "ready", "pid": os.getpid(), "role": channel.status.role.value, "restored": restored})

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    async def handle(cmd: dict[str, Any]) -> dict[str, Any] | None:
        op = cmd["op"]
        if op == "write":
            replica.write(cmd["key"], cmd["value"])
            return {}
        if op == "wait":
            ok = await wait_value(replica, cmd["key"], cmd["value"], cmd.get("timeout", 5))
            cur = replica.read(cmd["key"])
            return {"ok": ok, "value": None if cur is MISSING else cur}
        if op == "dump":
            return {"docs": {d: replica.read_path(d, ()) for d in sorted(replica.doc_ids())}}
        if op == "status":
            return {"role": channel.status.role.value}
        if op == "wait_connected":
            deadline = cmd.get("timeout", 5)
            if not channel.status.connected:
                ev = asyncio.Event()
                unsub = channel.subscribe(lambda st: ev.set() if st.connected else None)
                try:
                    await asyncio.wait_for(ev.wait(), deadline)
                finally:
                    unsub()
            return {"role": channel.status.role.value}
        if op == "flush":
            if persister is not None:
                await persister.flush()
            return {}
        if op == "exit":
            await channel.close()
            if persister is not None:
                await persister.close()
            return None
        return {"error": f"unknown op {op}"}

    while line := await reader.readline():
        cmd = json.loads(line)
        try:
            reply = await handle(cmd)
        except Exception as exc:  # report, keep serving
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        if reply is None:
            emit({"id": cmd["id"], "bye": True})
            return
        emit({"id": cmd["id"], **reply})
    await channel.close()
    if persister is not None:
        await persister.close()


if __name__ == "__main__":
    asyncio.run(main())
