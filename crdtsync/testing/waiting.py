"""Waiting in tests without sleeping: on a change signal, or on a fake clock that does not move.

- :func:`until` ``(predicate, changes=..., timeout=..., what=...)``: return as soon as
  ``predicate()`` holds. With ``changes`` (a :class:`Changes`), it wakes only when something
  pokes it (a watch callback, a listener); without, it yields to the event loop between checks
  (no time passes: it lets socket I/O and tasks run). Either way the timeout bounds it and a
  timeout fails with an ``AssertionError`` naming ``what``.
- :func:`settle_until` ``(clock, predicate, rounds=...)``: for tests on a
  :class:`~crdtsync.clock.FakeClock`: let the loop run (``clock.settle()``) without moving time.
- :func:`until_value` ``(replica, key, value)``: until a replica's key holds a value, woken by
  the replica's watch on that key; :func:`until_replica` ``(predicate, replica, *doc_ids)``: until
  ``predicate()``, woken by every change of those documents.
- :class:`Changes`: the wake-up signal. ``changes.poke`` fits any callback slot;
  :meth:`Changes.watch` pokes on every change of documents of a replica.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from ..clock import FakeClock
from ..replica import Replica

__all__ = ["Changes", "settle_until", "until", "until_replica", "until_value"]

DEFAULT_TIMEOUT = 5.0


class Changes:
    """A wake-up signal for :func:`until`: call :meth:`poke` (with any arguments) on a change."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self._stops: list[Callable[[], None]] = []

    def poke(self, *_: Any) -> None:
        self._event.set()

    async def wait(self) -> None:
        await self._event.wait()
        self._event.clear()

    def watch(self, replica: Replica, *doc_ids: str) -> Changes:
        """Poke on every change of ``doc_ids`` in ``replica`` (every document when none is
        named); :meth:`close` stops watching."""
        if doc_ids:
            self._stops.extend(replica.watch(d, (), self.poke) for d in doc_ids)
        else:
            self._stops.append(replica.on_update(self.poke))
        return self

    def close(self) -> None:
        for stop in self._stops:
            stop()
        self._stops.clear()


async def until(
    predicate: Callable[[], object],
    *,
    changes: Changes | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    what: str = "the condition",
) -> None:
    """Until ``predicate()`` is true (see the module docstring)."""
    try:
        async with asyncio.timeout(timeout):
            while not predicate():
                if changes is None:
                    await asyncio.sleep(0)  # one turn of the event loop; no time passes
                else:
                    await changes.wait()
    except TimeoutError:
        raise AssertionError(f"timed out after {timeout} s waiting for {what}") from None


async def settle_until(clock: FakeClock, predicate: Callable[[], object], *, rounds: int = 50) -> None:
    """Let the loop run on ``clock`` (no time passes) until ``predicate()`` holds."""
    for _ in range(rounds):
        if predicate():
            return
        await clock.settle()
    raise AssertionError("condition not reached")


async def until_value(replica: Replica, key: tuple[Any, ...], value: Any, *, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Until ``replica.read(key) == value``, woken by the replica's watch on that key."""
    route = replica.route(key)
    changes = Changes()
    stop = replica.watch(route.doc_id, route.path, changes.poke)
    try:
        await until(lambda: replica.read(key) == value, changes=changes, timeout=timeout, what=f"{key} == {value!r}")
    finally:
        stop()


async def until_replica(predicate: Callable[[], object], replica: Replica, *doc_ids: str,
                        timeout: float = DEFAULT_TIMEOUT, what: str = "the condition") -> None:
    """Until ``predicate()``, woken by every change of ``doc_ids`` in ``replica`` (every
    document when none is named)."""
    changes = Changes().watch(replica, *doc_ids)
    try:
        await until(predicate, changes=changes, timeout=timeout, what=what)
    finally:
        changes.close()
