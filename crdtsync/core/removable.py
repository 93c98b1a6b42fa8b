"""Removable: the garbage-collection timer of a cache entry (a query or a mutation).

``schedule_gc()`` (re)starts a timer of ``gc_time`` seconds (an attribute its owner keeps
current) on the entry's clock; when it fires,
``optional_remove()`` decides whether the entry really goes (no observer left, not busy) and
removes it from its cache. ``clear_gc()`` stops the timer (an observer came back). An infinite
``gc_time`` never schedules. Without a running event loop the timer cannot start: the entry
remembers that (``gc_deferred``) and its owner schedules again once it can.
"""

from __future__ import annotations

import abc
import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..clock import Clock, TimerHandle


class Removable(abc.ABC):
    gc_time: float = 300.0  # seconds between the last reason to keep the entry and its removal
    _gc_timer: TimerHandle | None = None
    gc_deferred: bool = False

    @abc.abstractmethod
    def gc_clock(self) -> Clock:
        """The clock the timer runs on."""

    @abc.abstractmethod
    def optional_remove(self) -> None:
        """The timer fired: remove the entry from its cache if nothing keeps it."""

    def schedule_gc(self) -> None:
        self.clear_gc()
        gc_time = self.gc_time
        if math.isinf(gc_time):
            return
        try:
            self._gc_timer = self.gc_clock().call_later(max(0.0, gc_time), self._gc_fired)
            self.gc_deferred = False
        except RuntimeError:  # no running event loop (a synchronous set_query_data, say)
            self.gc_deferred = True

    def clear_gc(self) -> None:
        if self._gc_timer is not None:
            self._gc_timer.cancel()
            self._gc_timer = None

    def _gc_fired(self) -> None:
        self._gc_timer = None
        self.optional_remove()
