"""Fixtures of the TanStack conformance suite.

Each test names the TanStack query-core test it follows (``packages/query-core/src/__tests__``);
a test that asserts one of crdtsync's documented differences says so in a ``# DIFFERENCE:``
comment pointing at the "Differences from TanStack Query" table in ``docs/queries.md``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from crdtsync.query import QueryFunctionContext
from tests.query.conftest import client, clock

__all__ = ["Server", "client", "clock", "returning", "settle"]


def returning(value: Any, calls: list[Any] | None = None) -> Callable[[QueryFunctionContext], Any]:
    """A query function that returns ``value`` (a callable is called with the context),
    recording each call's context in ``calls``."""

    async def fn(ctx: QueryFunctionContext) -> Any:
        if calls is not None:
            calls.append(ctx)
        return value(ctx) if callable(value) else value

    return fn


class Server:
    """A query function the test finishes by hand: ``release(value)`` / ``fail(error)``."""

    def __init__(self) -> None:
        self.calls: list[QueryFunctionContext] = []
        self._futs: list[asyncio.Future[Any]] = []

    async def fn(self, ctx: QueryFunctionContext) -> Any:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.calls.append(ctx)
        self._futs.append(fut)
        return await fut

    def _next(self) -> asyncio.Future[Any]:
        for fut in self._futs:
            if not fut.done():
                return fut
        raise AssertionError("no call is waiting")

    def release(self, value: Any) -> None:
        self._next().set_result(value)

    def fail(self, error: BaseException) -> None:
        self._next().set_exception(error)


async def settle(rounds: int = 30) -> None:
    """Let ready tasks run (no time passes)."""
    for _ in range(rounds):
        await asyncio.sleep(0)
