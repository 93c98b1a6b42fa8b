"""The one retry loop (crdtsync/core/retryer.py), driven directly on a fake clock."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable

import pytest

from crdtsync import ClientError, FakeClock
from crdtsync.core.retry import default_retry_delay, should_retry
from crdtsync.core.retryer import Retryer


class Boom(Exception):
    pass


def flaky(failures: int, result: str = "ok") -> tuple[list[int], Callable[[], Awaitable[str]]]:
    calls: list[int] = []

    async def fn() -> str:
        calls.append(len(calls) + 1)
        if len(calls) <= failures:
            raise Boom(len(calls))
        return result

    return calls, fn


async def test_retries_with_the_delays_then_returns() -> None:
    clock = FakeClock()
    calls, fn = flaky(2)
    failed: list[tuple[int, str]] = []
    r: Retryer[str] = Retryer(fn, retry=3, retry_delay=5.0, clock=clock, rng=random.Random(0),
                              on_fail=lambda n, e: failed.append((n, str(e))))
    task = asyncio.create_task(r.run())
    await clock.settle()
    assert calls == [1] and failed == [(1, "1")]
    await clock.advance(4.9)
    assert calls == [1]  # the delay is not over yet
    await clock.advance(0.1)
    assert calls == [1, 2]
    await clock.advance(5)
    assert await task == "ok" and calls == [1, 2, 3] and failed == [(1, "1"), (2, "2")]
    assert r.failure_count == 2


async def test_gives_up_after_the_policy_and_never_retries_client_errors() -> None:
    clock = FakeClock()
    calls, fn = flaky(5)
    r: Retryer[str] = Retryer(fn, retry=1, retry_delay=0, clock=clock, rng=random.Random(0))
    task = asyncio.create_task(r.run())
    await clock.advance(1)
    with pytest.raises(Boom):
        await task
    assert calls == [1, 2]

    async def client_error() -> None:
        raise ClientError("400")

    with pytest.raises(ClientError):
        await Retryer(client_error, retry=True, retry_delay=0, clock=clock, rng=random.Random(0)).run()


async def test_gate_runs_before_every_attempt_with_the_failure_count() -> None:
    clock = FakeClock()
    _, fn = flaky(1)
    seen: list[int] = []

    async def gate(failures: int) -> None:
        seen.append(failures)

    r: Retryer[str] = Retryer(fn, retry=2, retry_delay=0, clock=clock, rng=random.Random(0), gate=gate)
    task = asyncio.create_task(r.run())
    await clock.advance(0)
    assert await task == "ok" and seen == [0, 1]


async def test_intercepted_errors_are_not_failures_and_passthrough_is_raised_at_once() -> None:
    clock = FakeClock()
    calls, fn = flaky(2)
    r: Retryer[str] = Retryer(fn, retry=0, retry_delay=0, clock=clock, rng=random.Random(0),
                              intercept=lambda e, n: _true())
    assert await r.run() == "ok" and calls == [1, 2, 3] and r.failure_count == 0

    calls, fn = flaky(1)
    r = Retryer(fn, retry=True, retry_delay=0, clock=clock, rng=random.Random(0),
                intercept=lambda e, n: _true(), passthrough=(Boom,))
    with pytest.raises(Boom):
        await r.run()
    assert calls == [1]


async def _true() -> bool:
    return True


def test_policy() -> None:
    err = Boom()
    assert should_retry(3, 3, err) and not should_retry(3, 4, err)
    assert should_retry(True, 100, err) and not should_retry(False, 1, err)
    assert should_retry(lambda n, e: n < 2, 1, err) and not should_retry(lambda n, e: n < 2, 2, err)
    assert not should_retry(True, 1, ClientError("x"))
    rng = random.Random(1)
    for n, full in ((1, 1.0), (2, 2.0), (6, 30.0), (20, 30.0)):
        assert full / 2 <= default_retry_delay(n, rng) <= full


async def test_cancel_retry_makes_the_current_attempt_the_last() -> None:
    clock = FakeClock()
    calls, fn = flaky(5)
    r: Retryer[str] = Retryer(fn, retry=True, retry_delay=10, clock=clock, rng=random.Random(0))
    task = asyncio.create_task(r.run())
    await clock.settle()
    assert calls == [1]  # failed once, waiting 10 s
    r.cancel_retry()
    await clock.advance(10)
    with pytest.raises(Boom):
        await task
    assert calls == [1]  # the delay ended in the error, no second call

    calls, fn = flaky(1)
    r = Retryer(fn, retry=True, retry_delay=10, clock=clock, rng=random.Random(0))
    r.cancel_retry()
    r.continue_retry()
    task = asyncio.create_task(r.run())
    await clock.advance(10)
    assert await task == "ok" and calls == [1, 2]


async def test_cancel_retry_while_the_gate_waits_raises_the_last_failure() -> None:
    """As TanStack's retryer: a retry cancelled during its pause (the gate) is not attempted."""
    clock = FakeClock()
    calls, fn = flaky(5)
    opened = asyncio.Event()

    async def gate(failures: int) -> None:
        if failures:
            await opened.wait()

    r: Retryer[str] = Retryer(fn, retry=True, retry_delay=1, clock=clock, rng=random.Random(0), gate=gate)
    task = asyncio.create_task(r.run())
    await clock.advance(1)
    assert calls == [1]  # the delay is over, the gate holds the retry
    r.cancel_retry()
    opened.set()
    with pytest.raises(Boom):
        await task
    assert calls == [1]
