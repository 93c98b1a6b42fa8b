"""Ported from TanStack query-core ``query.test.tsx`` (behaviour, not code)."""

from __future__ import annotations

import asyncio

from crdtsync import FakeClock, QueryClient
from crdtsync.cache import QueryFunctionContext
from tests.tanstack.conftest import settle


def failing(calls: list[float], clock: FakeClock, *, succeed_on: int = 0) -> object:
    async def fn(ctx: QueryFunctionContext) -> str:
        calls.append(clock.now())
        if succeed_on and len(calls) >= succeed_on:
            return "ok"
        raise RuntimeError(f"fail {len(calls)}")

    return fn


async def test_retries_pause_while_unfocused(client: QueryClient, clock: FakeClock) -> None:
    """query: 'should continue retry after focus regain'."""
    calls: list[float] = []
    client.focus_manager.set_focused(False)
    task = asyncio.create_task(client.fetch_query(("rf",), failing(calls, clock, succeed_on=2),
                                                  retry=1, retry_delay=1))
    await clock.advance(5)
    assert len(calls) == 1
    state = client.get_query_state(("rf",))
    assert state is not None and state.fetch_status == "paused" and state.fetch_failure_count == 1
    client.focus_manager.set_focused(True)
    assert await asyncio.wait_for(task, 2) == "ok"
    assert len(calls) == 2



async def test_retries_stop_after_last_observer_unsubscribes(client: QueryClient, clock: FakeClock) -> None:
    """query: 'should stop retry when unsubscribing' (the attempt in flight finishes, no more
    attempts follow and the query ends in error)."""
    calls: list[float] = []
    observer = client.observe(("ru",), failing(calls, clock), retry=3, retry_delay=1)
    unsubscribe = observer.subscribe(lambda r: None)
    await settle()
    assert len(calls) == 1
    unsubscribe()
    await clock.advance(10)
    assert len(calls) == 1
    state = client.get_query_state(("ru",))
    assert state is not None and state.status == "error" and state.fetch_status == "idle"
    assert isinstance(state.error, RuntimeError)


async def test_failed_background_refetch_marks_fresh_data_invalidated(client: QueryClient, clock: FakeClock) -> None:
    """query: 'should be stale if a background refetch failed' (the error marks existing data
    invalidated, so the next focus refetches although stale_time has not passed)."""
    calls: list[float] = []
    answers: list[object] = ["v", RuntimeError("down"), "v2"]

    async def fn(ctx: QueryFunctionContext) -> object:
        calls.append(clock.now())
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    observer = client.observe(("bg",), fn, stale_time=60, retry=0)
    unsubscribe = observer.subscribe(lambda r: None)
    await settle()
    await observer.refetch()
    state = client.get_query_state(("bg",))
    assert state is not None and state.status == "error" and state.is_invalidated
    assert observer.get_current_result().is_stale
    client.focus_manager.signal_focus()
    await settle()
    assert len(calls) == 3 and client.get_query_data(("bg",)) == "v2"
    unsubscribe()
