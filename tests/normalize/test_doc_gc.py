"""DocCollector (crdtsync/normalize/doc_gc.py): reference counts and timed collection."""

from __future__ import annotations

from crdtsync import FakeClock
from crdtsync.normalize.doc_gc import DocCollector


async def test_counts_then_collects_after_the_gc_time() -> None:
    clock = FakeClock()
    unloaded: list[str] = []
    heard: list[tuple[str, bool]] = []
    c = DocCollector(clock, unloaded.append)
    c.on_reference(lambda d, on: heard.append((d, on)))
    c.note_gc_time("d", 10)
    c.incref("d", 3)
    c.decref("d", 2)
    assert c.referenced_docs() == {"d": 1} and heard == [("d", True)]
    c.decref("d")
    assert c.referenced_docs() == {}
    await clock.advance(9.9)
    assert unloaded == []
    await clock.advance(0.1)
    assert unloaded == ["d"] and heard == [("d", True), ("d", False)]


async def test_a_new_reference_in_the_gc_window_keeps_the_document() -> None:
    clock = FakeClock()
    unloaded: list[str] = []
    c = DocCollector(clock, unloaded.append)
    c.incref("d")
    c.decref("d")
    await clock.advance(299)
    c.incref("d")  # the default gc time is 300 s
    await clock.advance(10)
    assert unloaded == [] and c.referenced_docs() == {"d": 1}


async def test_an_infinite_gc_time_never_collects() -> None:
    clock = FakeClock()
    unloaded: list[str] = []
    c = DocCollector(clock, unloaded.append)
    c.note_gc_time("d", float("inf"))
    c.incref("d")
    c.decref("d")
    assert clock.pending_timers() == 0 and unloaded == []
