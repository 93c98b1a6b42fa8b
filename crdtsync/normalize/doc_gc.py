"""DocCollector: reference counts of entity documents, and their collection.

The entity store counts, per entity document, how many entity references the queries in the
cache hold into it (:meth:`DocCollector.incref` / :meth:`DocCollector.decref`). When the count
of a document falls to zero, a timer of the entity type's ``gc_time`` starts; if nothing
references the document again before it fires, listeners hear ``(doc_id, False)`` and the
document is unloaded from the replica (its peers and stores keep it). A document that gains its
first reference tells listeners ``(doc_id, True)`` (sync bindings subscribe to it then).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..clock import TimerHandle

DEFAULT_GC_TIME = 300.0


class DocCollector:
    def __init__(self, clock: Any, unload: Callable[[str], object]) -> None:
        self.clock = clock
        self._unload = unload
        self._refcount: dict[str, int] = {}
        self._gc_time: dict[str, float] = {}
        self._timers: dict[str, TimerHandle] = {}
        self._listeners: list[Callable[[str, bool], None]] = []

    def on_reference(self, callback: Callable[[str, bool], None]) -> Callable[[], None]:
        """Call ``callback(doc_id, True)`` when an entity document gains its first query
        reference and ``callback(doc_id, False)`` when it is collected."""
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback) if callback in self._listeners else None

    def note_gc_time(self, doc_id: str, gc_time: float) -> None:
        """The gc time of ``doc_id`` (the first one noted stays until it is collected)."""
        self._gc_time.setdefault(doc_id, gc_time)

    def incref(self, doc_id: str, count: int = 1) -> None:
        before = self._refcount.get(doc_id, 0)
        self._refcount[doc_id] = before + count
        timer = self._timers.pop(doc_id, None)
        if timer is not None:
            timer.cancel()
        if before == 0:  # listeners are idempotent: a re-reference during the gc window tells them too
            for cb in list(self._listeners):
                cb(doc_id, True)

    def decref(self, doc_id: str, count: int = 1) -> None:
        n = self._refcount.get(doc_id, 0) - count
        if n > 0:
            self._refcount[doc_id] = n
            return
        self._refcount.pop(doc_id, None)
        gc_time = self._gc_time.get(doc_id, DEFAULT_GC_TIME)
        if doc_id in self._timers or gc_time == float("inf"):
            return
        self._timers[doc_id] = self.clock.call_later(gc_time, lambda: self._collect(doc_id))

    def _collect(self, doc_id: str) -> None:
        self._timers.pop(doc_id, None)
        if self._refcount.get(doc_id, 0) == 0:
            for cb in list(self._listeners):
                cb(doc_id, False)
            self._unload(doc_id)
            self._gc_time.pop(doc_id, None)

    def referenced_docs(self) -> dict[str, int]:
        """Entity documents and how many entity references each has (for tests and tools)."""
        return dict(self._refcount)
