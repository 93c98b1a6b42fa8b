"""A real process with pending mutations is killed with SIGKILL; the next one resumes each
mutation exactly once, in order, with the same idempotency keys."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from crdtsync import FakeClock, QueryClient

from .conftest import Server

CHILD = r"""
import asyncio, json, sys
from crdtsync import FakeClock, QueryClient

async def main():
    client = QueryClient(clock=FakeClock())
    client.set_mutation_defaults(("todos", "patch"),
                                 optimistic=lambda tx, v: tx.merge(("todos", v["id"]), v["fields"]))
    client.use_outbox(sys.argv[1])
    client.online_manager.set_online(False)
    keys = [client.mutate({"id": 1, "fields": {"n": i}}, mutation_key=("todos", "patch"), scope="t1").idempotency_key
            for i in range(int(sys.argv[2]))]
    print(json.dumps(keys), flush=True)
    await asyncio.Event().wait()  # pending forever, until killed

asyncio.run(main())
"""


async def test_sigkill_with_pending_mutations_then_restart(tmp_path: Path) -> None:
    path = str(tmp_path / "outbox.sqlite")
    n = 40
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", CHILD, path, str(n),
                                                stdout=asyncio.subprocess.PIPE, env={**os.environ})
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 30)
    keys = json.loads(line)
    os.kill(proc.pid, signal.SIGKILL)
    assert await asyncio.wait_for(proc.wait(), 10) == -signal.SIGKILL

    server = Server()
    client = QueryClient(clock=FakeClock())
    client.set_mutation_defaults(("todos", "patch"), mutation_fn=server.patch,
                                 optimistic=lambda tx, v: tx.merge(("todos", v["id"]), v["fields"]))
    restored = client.use_outbox(path)
    assert [m.idempotency_key for m in restored] == keys
    assert client.get_query_data(("todos", 1)) == {"n": n - 1}
    seen: list[Any] = []
    for m in restored:
        m.observers.append(lambda mut, action: seen.append(mut.mutation_id) if mut.state.is_settled else None)
    await client.resume_paused_mutations()
    assert server.applied == keys and server.calls == n  # each once, in order
    assert server.rows["1"] == {"n": n - 1}
    assert seen == sorted(seen)
    await client.close_mutations()
