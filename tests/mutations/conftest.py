from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import Any

import pytest

from crdtsync import FakeClock, QueryClient, Replica
from crdtsync.mutations.options import MutationFunctionContext
from crdtsync.origins import OriginKind, remote_origin


class Gate:
    """A server call the test finishes by hand: ``gate.ok(value)`` / ``gate.fail(error)``."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, MutationFunctionContext]] = []
        self._waiters: list[asyncio.Future[Any]] = []
        self.arrived = asyncio.Event()

    async def fn(self, variables: Any, ctx: MutationFunctionContext) -> Any:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.calls.append((variables, ctx))
        self._waiters.append(fut)
        self.arrived.set()
        return await fut

    async def wait_calls(self, n: int) -> None:
        async def until() -> None:
            while len(self.calls) < n:
                self.arrived.clear()
                await self.arrived.wait()
        await asyncio.wait_for(until(), 2)

    def _next(self) -> asyncio.Future[Any]:
        for fut in self._waiters:
            if not fut.done():
                return fut
        raise AssertionError("no server call is waiting")

    def ok(self, value: Any = "ok") -> None:
        self._next().set_result(value)

    def fail(self, error: BaseException) -> None:
        self._next().set_exception(error)


class Server:
    """A server that applies field updates once per idempotency key and keeps versions."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}
        self.applied: list[str] = []
        self.seen: set[str] = set()
        self.calls = 0

    async def patch(self, variables: Any, ctx: MutationFunctionContext) -> Any:
        self.calls += 1
        if ctx.idempotency_key not in self.seen:
            self.seen.add(ctx.idempotency_key)
            self.applied.append(ctx.idempotency_key)
            row = self.rows.setdefault(str(variables["id"]), {})
            row.update(variables["fields"])
        return dict(self.rows[str(variables["id"])])


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def client(clock: FakeClock) -> AsyncIterator[QueryClient]:
    c = QueryClient(clock=clock, rng=random.Random(7))
    yield c
    await c.close_mutations()
    await c.close()


@pytest.fixture
def gate() -> Gate:
    return Gate()


def merge_fields(tx: Any, v: Any) -> None:
    """The optimistic part used across these tests: set some fields of ("todos", id)."""
    tx.merge(("todos", v["id"]), v["fields"])


class Link:
    """Two replicas exchanging updates directly; ``cut()`` queues them, ``heal()`` delivers."""

    def __init__(self, a: Any, b: Any) -> None:
        from crdtsync.origins import OriginKind, remote_origin

        self.up = True
        self.queue: list[tuple[Any, str, bytes]] = []
        self._remote = remote_origin

        def forward(dst: Any, name: str) -> Any:
            def cb(doc_id: str, update: bytes, origin: Any) -> None:
                if origin.kind in (OriginKind.REMOTE, OriginKind.RESTORE):
                    return
                if self.up:
                    dst.apply_update(doc_id, update, origin=remote_origin(name))
                else:
                    self.queue.append((dst, doc_id, update))
            return cb

        a.on_update(forward(b, "a"))
        b.on_update(forward(a, "b"))

    def cut(self) -> None:
        self.up = False

    def heal(self) -> None:
        self.up = True
        while self.queue:
            dst, doc_id, update = self.queue.pop(0)
            dst.apply_update(doc_id, update, origin=self._remote("peer"))


def linked_client_and_peer() -> tuple[QueryClient, Replica]:
    """A client (client id 1, fake clock) and a peer replica (client id 2) joined by a two-way
    link that never sends a peer's update back (the property tests' network)."""
    client = QueryClient(clock=FakeClock(), replica=Replica(client_id=1), rng=random.Random(0))
    peer = Replica(client_id=2)
    peer.on_update(lambda d, u, o: None if o.kind is OriginKind.REMOTE
                   else client.replica.apply_update(d, u, origin=remote_origin("peer")))
    client.replica.on_update(lambda d, u, o: None if o.kind is OriginKind.REMOTE else peer.apply_update(d, u))
    return client, peer
