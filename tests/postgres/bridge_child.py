"""A bridge in a process of its own, for the kill -9 tests (tests/postgres/test_crash.py).

``python bridge_child.py URL LEDGER PHASE N``: starts a PostgresBridge on the todos table,
prints ``started``, prints ``stored <lsn>`` for every transaction it stored in its ledger,
and SIGKILLs itself at the N-th progress event of PHASE (``copied``, ``applied``, ``stored``,
``confirmed``). It never exits on its own."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from crdtsync.normalize import EntityType
from crdtsync.postgres import PostgresBridge, Table


async def main(url: str, ledger: str, phase: str, n: int) -> None:
    count = 0

    def progress(p: str, lsn: int) -> None:
        nonlocal count
        if p == "stored":
            print(f"stored {lsn}", flush=True)
        if p == phase:
            count += 1
            if count == n:
                os.kill(os.getpid(), signal.SIGKILL)

    bridge = PostgresBridge(url, [Table("todos", EntityType("todo"))], ledger=ledger, on_progress=progress)
    await bridge.start()
    print("started", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
