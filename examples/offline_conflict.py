"""Two replicas edit the same todo while offline; everything converges.

- Replica A renames the todo and sets an invalid priority; replica B renames it too and marks
  it done. Both are offline, and their link to each other is cut.
- The link heals first: the peers exchange their optimistic edits, and A reports a field
  conflict on ``title`` (B's concurrent rename wins the CRDT merge on both sides).
- B comes online: its mutation is accepted (version 1 -> 2).
- A comes online: its paused mutations resume in order. The rename is rejected with a version
  conflict (409): the resolver rebases A's rename on the server's row and the retry succeeds
  (version 3). The priority change is rejected (422): exactly that edit rolls back.
- Both refetch, and both replicas hold the server's row.

Run: python examples/offline_conflict.py   (exits 0 in well under a second)
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

from crdtsync import FakeClock, QueryClient, Replica
from crdtsync.errors import ClientError, VersionConflictError
from crdtsync.mutations import ConflictDetected, MutationFunctionContext, VersionConflictDetected
from crdtsync.origins import OriginKind, remote_origin

TODO = ("todos", 1)


class Api:
    """The server: one row with a version; PATCH needs the version it was based on."""

    def __init__(self) -> None:
        self.row: dict[str, Any] = {"title": "Buy milk", "done": False, "priority": 1, "version": 1}
        self.seen: set[str] = set()

    async def get(self, ctx: Any) -> Any:
        return dict(self.row)

    async def patch(self, v: dict[str, Any], ctx: MutationFunctionContext) -> Any:
        if ctx.idempotency_key in self.seen:  # a resend after a lost answer: already applied
            return dict(self.row)
        if v["version"] != self.row["version"]:
            raise VersionConflictError("409", server_value=dict(self.row), server_version=self.row["version"])
        if v["fields"].get("priority", 1) < 0:
            raise ClientError("priority must be >= 0", status=422)
        self.seen.add(ctx.idempotency_key)
        self.row.update(v["fields"], version=self.row["version"] + 1)
        return dict(self.row)


class Link:
    """A direct replica-to-replica link that can be cut (updates queue) and healed."""

    def __init__(self, a: Replica, b: Replica) -> None:
        self.up = True
        self.queue: list[tuple[Replica, str, bytes]] = []
        for src, dst, name in ((a, b, "A"), (b, a, "B")):
            src.on_update(self._forward(dst, name))

    def _forward(self, dst: Replica, name: str) -> Any:
        def cb(doc_id: str, update: bytes, origin: Any) -> None:
            if origin.kind is OriginKind.REMOTE:
                return  # never echo a peer's update back
            if self.up:
                dst.apply_update(doc_id, update, origin=remote_origin(name))
            else:
                self.queue.append((dst, doc_id, update))
        return cb

    def heal(self) -> None:
        self.up = True
        while self.queue:
            dst, doc_id, update = self.queue.pop(0)
            dst.apply_update(doc_id, update, origin=remote_origin("peer"))


def rebase_on_server(conflict: Any) -> Any:
    """Resolver: keep my fields, take the server's version (and print what happened)."""
    print(f"  version conflict: based on v{conflict.variables['version']}, server is at "
          f"v{conflict.server_version}; retrying my {conflict.variables['fields']} on top")
    return {**conflict.variables, "version": conflict.server_version}


def make(api: Api, name: str, client_id: int, clock: FakeClock) -> QueryClient:
    client = QueryClient(clock=clock, replica=Replica(client_id=client_id), rng=random.Random(client_id))
    client.set_mutation_defaults(("todos", "patch"), mutation_fn=api.patch, resolve_conflict=rebase_on_server,
                                 optimistic=lambda tx, v: tx.merge(TODO, v["fields"]), scope="todo-1")

    def show(event: Any) -> None:
        if isinstance(event, ConflictDetected):
            c = event.conflict
            print(f"  [{name}] field conflict on {'/'.join(c.path)} ({c.source}): local={c.local!r} "
                  f"incoming={c.incoming!r} base={c.base!r} -> {c.resolved!r} ({c.policy})")
        elif isinstance(event, VersionConflictDetected):
            print(f"  [{name}] version conflict event for mutation {event.mutation.mutation_id}")

    client.mutation_cache.subscribe(show)
    return client


async def main() -> int:
    api, clock = Api(), FakeClock()
    a, b = make(api, "A", 1, clock), make(api, "B", 2, clock)
    link = Link(a.replica, b.replica)
    await a.fetch_query(TODO, api.get)
    await b.fetch_query(TODO, api.get)

    print("offline: both edit todo 1")
    link.up = False
    for c in (a, b):
        c.online_manager.set_online(False)
    rename = a.mutate({"fields": {"title": "Buy oat milk"}, "version": 1}, mutation_key=("todos", "patch"))
    bad = a.mutate({"fields": {"priority": -5}, "version": 1}, mutation_key=("todos", "patch"))
    done = b.mutate({"fields": {"title": "Buy milk (2 L)", "done": True}, "version": 1},
                    mutation_key=("todos", "patch"))
    print("  A shows", a.get_query_data(TODO))
    print("  B shows", b.get_query_data(TODO))
    phases = [c.mutation_state(select=lambda m: m.state.phase) for c in (a, b)]
    print("  A mutations:", phases[0], " B mutations:", phases[1])

    print("the peers reconnect to each other")
    link.heal()
    print("  A shows", a.get_query_data(TODO))

    print("B comes online")
    b.online_manager.set_online(True)
    await done.result()
    print("  server", api.row)

    print("A comes online (its two mutations resume in order)")
    a.online_manager.set_online(True)
    await rename.result()
    try:
        await bad.result()
    except ClientError as exc:
        print(f"  rejected: {exc} -> priority rolled back to {a.get_query_data(TODO)['priority']}")

    await asyncio.gather(a.invalidate_queries(("todos",)), b.invalidate_queries(("todos",)))
    await a.fetch_query(TODO, api.get, stale_time=0)
    await b.fetch_query(TODO, api.get, stale_time=0)
    print("converged:")
    print("  server", api.row)
    print("  A     ", a.get_query_data(TODO))
    print("  B     ", b.get_query_data(TODO))
    assert a.get_query_data(TODO) == b.get_query_data(TODO) == api.row
    assert api.row["title"] == "Buy oat milk" and api.row["done"] is True and api.row["priority"] == 1
    for c in (a, b):
        await c.close_mutations()
        await c.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
