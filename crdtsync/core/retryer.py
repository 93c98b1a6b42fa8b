"""The retry loop shared by query fetches and mutations.

:class:`Retryer` runs one piece of work under the policy of :mod:`crdtsync.core.retry`.
Before each attempt it awaits the owner's ``gate`` (where a query or a mutation pauses for
the network, a query's retry also for focus, and continues, changing its own state); after a
failure that will be retried it calls ``on_fail`` and sleeps on the injected clock. The owner
keeps its state: the retryer only counts failures.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from ..clock import Clock
from .retry import RetryDelay, RetryOption, retry_delay, should_retry

T = TypeVar("T")


async def _no_gate(failure_count: int) -> None:
    return None


class Retryer(Generic[T]):
    """Call ``fn`` until it returns, or fails in a way that is not retried (then raise).

    - ``gate(failure_count)`` is awaited before every attempt (the network wait).
    - ``intercept(error, failure_count)``: a chance to handle an error before the policy sees
      it (a mutation's version conflict); True means "handled, try again at once", and the
      error is not counted as a failure.
    - ``passthrough``: exception types raised at once, never retried nor intercepted.
    - ``on_fail(failure_count, error)`` runs before the delay of each retry.
    - ``asyncio.CancelledError`` always propagates.
    - :meth:`cancel_retry` / :meth:`continue_retry` stop and resume retrying from outside; a
      cancel while the gate waits before a retry (a pause) also raises the last failure.
    """

    def __init__(self, fn: Callable[[], Awaitable[T]], *, retry: RetryOption, retry_delay: RetryDelay | None,
                 clock: Clock, rng: random.Random,
                 gate: Callable[[int], Awaitable[None]] = _no_gate,
                 on_fail: Callable[[int, Exception], None] | None = None,
                 intercept: Callable[[Exception, int], Awaitable[bool]] | None = None,
                 passthrough: tuple[type[BaseException], ...] = ()):
        self._fn = fn
        self._retry = retry
        self._retry_delay = retry_delay
        self._clock = clock
        self._rng = rng
        self._gate = gate
        self._on_fail = on_fail
        self._intercept = intercept
        self._passthrough = passthrough
        self.failure_count = 0
        self._retry_cancelled = False

    def cancel_retry(self) -> None:
        """Make the attempt in flight the last one: its failure (or the end of the delay in
        progress) raises instead of retrying, as TanStack's ``cancelRetry``."""
        self._retry_cancelled = True

    def continue_retry(self) -> None:
        """Undo :meth:`cancel_retry` (someone wants the result again)."""
        self._retry_cancelled = False

    async def run(self) -> T:
        retrying: Exception | None = None  # the failure the next attempt retries
        while True:
            await self._gate(self.failure_count)
            if retrying is not None and self._retry_cancelled:  # cancelled while the gate waited
                raise retrying
            retrying = None
            try:
                return await self._fn()
            except asyncio.CancelledError:
                raise
            except Exception as err:
                if isinstance(err, self._passthrough):
                    raise
                if self._intercept is not None and await self._intercept(err, self.failure_count):
                    continue
                self.failure_count += 1
                if self._retry_cancelled or not should_retry(self._retry, self.failure_count, err):
                    raise
                if self._on_fail is not None:
                    self._on_fail(self.failure_count, err)
                await self._clock.sleep(retry_delay(self._retry_delay, self.failure_count, err, self._rng))
                if self._retry_cancelled:
                    raise
                retrying = err
