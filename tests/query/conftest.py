from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from crdtsync import FakeClock, QueryClient
from crdtsync.query import QueryFunctionContext


class FakeAPI:
    """A server double: per-key values, call log, programmable failures and gates."""

    def __init__(self) -> None:
        self.data: dict[Any, Any] = {}
        self.calls: list[tuple[Any, ...]] = []
        self.fail_next: list[BaseException] = []
        self.gate: asyncio.Event | None = None

    async def fetch(self, ctx: QueryFunctionContext) -> Any:
        self.calls.append(ctx.query_key)
        if self.gate is not None:
            await self.gate.wait()
        if self.fail_next:
            raise self.fail_next.pop(0)
        from crdtsync.keys import hash_key

        for k, v in self.data.items():
            if hash_key(k) == hash_key(ctx.query_key):
                return v
        return {"key": list(map(str, ctx.query_key))}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def api() -> FakeAPI:
    return FakeAPI()


@pytest.fixture
async def client(clock: FakeClock) -> AsyncIterator[QueryClient]:
    c = QueryClient(clock=clock, rng=random.Random(7))
    c.mount()
    yield c
    c.unmount()
    await c.close()


async def wait_for(predicate: Callable[[], bool], clock: FakeClock, rounds: int = 200) -> None:
    """Let the loop run until ``predicate`` holds (bounded; no real time passes)."""
    for _ in range(rounds):
        if predicate():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition not reached")


Fetcher = Callable[[QueryFunctionContext], Awaitable[Any]]
