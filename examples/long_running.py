"""Long-running operations: a mutation whose server answers with a job handle.

1. Polling: ``start_export`` returns ``{"job_id": ...}``; the job's query polls with a
   ``refetch_interval`` that turns itself off once the job is done. The observer prints progress.
2. Pushed: the server writes progress into the job's subtree of a shared document (here a
   server-side replica linked to ours); observers see it with no polling at all.
3. Cancelling: a running job is cancelled by a ``cancel_job`` mutation (optimistically shown
   as "cancelling"); and a start request that hangs is cancelled with ``Mutation.cancel()``,
   which rolls back its optimistic "queued" entry.

Job ids are passed in as variables (mutators must not invent ids: they are replayed after a
restart). Time is a FakeClock, so this runs instantly. Run: python examples/long_running.py
"""

from __future__ import annotations

import asyncio
from typing import Any

from crdtsync import FakeClock, QueryClient, Replica
from crdtsync.errors import MutationCancelledError
from crdtsync.origins import OriginKind, remote_origin


class JobServer:
    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.jobs: dict[str, dict[str, Any]] = {}
        self.hang = asyncio.Event()
        self.polls = 0

    def _view(self, job_id: str) -> dict[str, Any]:
        job = self.jobs[job_id]
        if job["state"] == "running":
            job["progress"] = min(job["total"], int(self.clock.now() - job["started"]))
            if job["progress"] == job["total"]:
                job["state"] = "done"
        return {k: job[k] for k in ("state", "progress", "total")}

    async def start(self, v: Any, ctx: Any) -> Any:
        if v.get("slow"):
            await self.hang.wait()
        self.jobs[v["job_id"]] = {"state": "running", "progress": 0, "total": v["total"], "started": self.clock.now()}
        return {"job_id": v["job_id"]}

    async def status(self, ctx: Any) -> Any:
        self.polls += 1
        return self._view(str(ctx.query_key[1]))

    async def cancel(self, v: Any, ctx: Any) -> Any:
        self._view(v["job_id"])
        self.jobs[v["job_id"]]["state"] = "cancelled"
        return self._view(v["job_id"])


def queued(tx: Any, v: Any) -> None:
    tx.set(("jobs", v["job_id"]), {"state": "queued", "progress": 0, "total": v["total"]})


def poll_until_settled(data: Any, query: Any) -> float | bool:
    return False if data and data["state"] in ("done", "cancelled") else 1.0


async def main() -> int:
    clock = FakeClock()
    server = JobServer(clock)
    client = QueryClient(clock=clock)
    client.set_mutation_defaults(("jobs", "start"), mutation_fn=server.start, optimistic=queued)

    # 1. polling
    print("1. polling")
    await client.mutate_async({"job_id": "export-1", "total": 4}, mutation_key=("jobs", "start"))
    obs = client.observe(("jobs", "export-1"), server.status, refetch_interval=poll_until_settled,
                         notify_on_change_props=["data"])
    stop = obs.subscribe(lambda r: print(f"   export-1: {r.data['state']} {r.data['progress']}/{r.data['total']}")
                         if r.data else None)
    for _ in range(6):
        await clock.advance(1)
    assert obs.get_current_result().data["state"] == "done"
    polls = server.polls
    await clock.advance(10)
    assert server.polls == polls  # polling stopped by itself once the job was done
    print(f"   {polls} polls, none after the job finished")
    stop()

    # 2. pushed progress
    print("2. pushed progress (no polling)")
    server_replica = Replica()

    def push(doc_id: str, update: bytes, origin: Any) -> None:
        if origin.kind is not OriginKind.REMOTE:
            client.replica.apply_update(doc_id, update, origin=remote_origin("server"))

    server_replica.on_update(push)
    pushed = client.observe(("jobs", "export-2"), stale_time=float("inf"), enabled=False)
    stop = pushed.subscribe(lambda r: print(f"   export-2: {r.data['state']} {r.data['progress']}/{r.data['total']}")
                            if r.data else None)
    for step in range(4):
        server_replica.write(("jobs", "export-2"), {"state": "running" if step < 3 else "done",
                                                    "progress": step + 1, "total": 4})
    assert pushed.get_current_result().data == {"state": "done", "progress": 4, "total": 4}
    stop()

    # 3. cancelling
    print("3. cancelling a running job")
    await client.mutate_async({"job_id": "export-3", "total": 10}, mutation_key=("jobs", "start"))
    obs3 = client.observe(("jobs", "export-3"), server.status, refetch_interval=poll_until_settled,
                          notify_on_change_props=["data"])
    stop = obs3.subscribe(lambda r: print(f"   export-3: {r.data['state']} {r.data['progress']}/{r.data['total']}")
                          if r.data else None)
    await clock.advance(2)
    cancel = client.mutate({"job_id": "export-3"}, mutation_fn=server.cancel,
                           optimistic=lambda tx, v: tx.merge(("jobs", v["job_id"]), {"state": "cancelling"}),
                           on_settled=lambda d, e, v, c: client.invalidate_queries(("jobs", v["job_id"])))
    await cancel.result()
    await clock.advance(3)
    assert obs3.get_current_result().data["state"] == "cancelled"
    stop()

    print("   cancelling a start request that hangs")
    slow = client.mutate({"job_id": "export-4", "total": 3, "slow": True}, mutation_key=("jobs", "start"))
    print("   optimistic:", client.get_query_data(("jobs", "export-4")))
    await clock.settle()
    slow.cancel()
    try:
        await slow.result()
    except MutationCancelledError:
        print("   cancelled; optimistic entry rolled back:", client.get_query_data(("jobs", "export-4")))
    assert client.get_query_data(("jobs", "export-4")) is None

    await client.close_mutations()
    await client.close()
    server_replica.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
