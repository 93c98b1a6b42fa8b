"""Freshness: the monotonic-read rule of entity writes, and the logical clock it runs on.

With a ``version`` field, an incoming entity whose version is older than the stored one is
refused, whatever order responses arrive in (and one with the *same* version from a fetch that
started before a local edit of it does not undo the edit). Without one, the rule is by fetch
start: a response to a fetch that *started* before the fetch that last wrote the entity, or
before the last local edit of it, does not overwrite it. "Before" is this logical clock
(:meth:`Freshness.tick`), strictly increasing, so it is exact even on a clock that does not
move. Local writes (``started_at`` None) always apply.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .entity import EntityType, is_newer_or_same


class Freshness:
    def __init__(self) -> None:
        self._written_at: dict[str, dict[str, float]] = {}  # type name -> entity id -> logical time
        self._ticks = 0

    def tick(self) -> float:
        """A logical time: taken when a fetch starts (its ``started_at``) or a local edit is made."""
        self._ticks += 1
        return float(self._ticks)

    def local_edit(self, t: EntityType, eid: str) -> None:
        """``eid`` was edited locally now: a fetch already in flight must not undo it."""
        self._written_at.setdefault(t.name, {})[eid] = self.tick()

    def accept(self, t: EntityType, eid: str, ent: dict[str, Any], started_at: float | None, fresh: bool,
               read: Callable[[EntityType, str], Any]) -> bool:
        """Whether to write ``ent`` (from a fetch that started at ``started_at``; None: a local
        write). ``read(t, eid)`` reads the stored entity (None when there is none); ``fresh``:
        its document is not loaded, so nothing is stored to compare with."""
        if t.version is not None:
            stored_ent = None if fresh else read(t, eid)
            if isinstance(stored_ent, dict):
                incoming, stored = t.version_of(ent), t.version_of(stored_ent)
                if not is_newer_or_same(incoming, stored):
                    return False
                last = self._written_at.get(t.name, {}).get(eid)
                if incoming == stored and started_at is not None and last is not None and started_at < last:
                    return False  # the same version, fetched before a local edit: keep the edit
            if started_at is None:
                self._written_at.setdefault(t.name, {})[eid] = self.tick()
            return True
        written = self._written_at.setdefault(t.name, {})
        if started_at is None:  # a local write: a fetch already in flight must not undo it
            written[eid] = self.tick()
            return True
        last = written.get(eid)
        if last is not None and started_at < last:
            return False
        written[eid] = started_at
        return True
