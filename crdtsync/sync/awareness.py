"""Client-side presence for one document: our local state and the states of remote peers.

A :class:`DocAwareness` is created by :meth:`SyncProvider.awareness`. Set the local state with
:meth:`DocAwareness.set_local_state` (any JSON value; ``None`` withdraws it), read everyone's
with :attr:`DocAwareness.states`, and listen with :meth:`DocAwareness.on_change`.

Rules, as y-protocols: our client id is the document's Yjs client id; each local change bumps
our clock; the provider renews the local state every 15 s so peers do not expire it; remote
states not renewed within 30 s are dropped; a remote "removal" of our own state is answered by
renewing it. When the connection drops, every remote state is dropped (they will be sent again
on reconnect).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ..clock import Clock
from ..protocol.awareness import AwarenessEntry, AwarenessRegistry, decode_awareness, encode_awareness, state_json

__all__ = ["AwarenessListener", "DocAwareness"]

AwarenessListener = Callable[[tuple[int, ...], tuple[int, ...], tuple[int, ...]], None]
"""``listener(added, updated, removed)``: client ids whose state appeared, changed, or went."""

_RELAY = "relay"


class DocAwareness:
    def __init__(
        self, doc_id: str, client_id: int, clock: Clock, send: Callable[[bytes], None], *, timeout: float = 30.0
    ):
        self.doc_id = doc_id
        self.client_id = client_id
        self._send = send
        self._clock = 0
        self._local: bytes | None = None
        self._remote = AwarenessRegistry(clock=clock.now, timeout=timeout)
        self._listeners: list[AwarenessListener] = []

    # -- local -------------------------------------------------------------------------------
    @property
    def local_state(self) -> Any:
        return None if self._local is None else json.loads(self._local)

    def set_local_state(self, state: Any) -> None:
        """Publish ``state`` (JSON-like) as ours; ``None`` withdraws it."""
        new = None if state is None else state_json(state)
        had = self._local is not None
        self._local = new
        self._clock += 1
        self._send(self._entry_payload())
        if new is None:
            if had:
                self._notify((), (), (self.client_id,))
        else:
            self._notify(() if had else (self.client_id,), (self.client_id,) if had else (), ())

    def renew(self) -> bytes | None:
        """Bump the clock of the local state and return the payload announcing it (None without
        a local state): the keep-alive, and the announcement after a (re)subscribe."""
        if self._local is None:
            return None
        self._clock += 1
        return self._entry_payload()

    def withdrawal(self) -> bytes:
        """A payload removing our state from peers while keeping it here (to be re-sent on
        the next subscribe): used when unsubscribing."""
        self._clock += 1
        return encode_awareness([AwarenessEntry(self.client_id, self._clock, b"null")])

    def _entry_payload(self) -> bytes:
        return encode_awareness([AwarenessEntry(self.client_id, self._clock, self._local or b"null")])

    # -- remote ------------------------------------------------------------------------------
    @property
    def states(self) -> dict[int, Any]:
        """Every known state, ours included: client id -> JSON value."""
        out = {cid: json.loads(raw) for cid, raw in self._remote.states().items()}
        if self._local is not None:
            out[self.client_id] = json.loads(self._local)
        return out

    def receive(self, payload: bytes) -> None:
        """Apply a payload from the relay (raises InvalidAwarenessError when malformed)."""
        entries = decode_awareness(payload)
        others = []
        for e in entries:
            if e.client_id != self.client_id:
                others.append(e)
            elif e.removed and self._local is not None and e.clock >= self._clock:
                # someone (an expiry on the relay) removed us while we are alive: renew
                self._clock = e.clock + 1
                self._send(self._entry_payload())
        change = self._remote.apply_entries(others, _RELAY)
        if change.changed:
            self._notify(change.added, change.updated, change.removed)

    def expire(self) -> None:
        payload = self._remote.expire()
        if payload is not None:
            self._notify((), (), tuple(e.client_id for e in decode_awareness(payload)))

    def clear_remote(self) -> None:
        """The connection dropped: forget every remote state."""
        payload = self._remote.remove_owner(_RELAY)
        if payload is not None:
            self._notify((), (), tuple(e.client_id for e in decode_awareness(payload)))

    # -- listeners ---------------------------------------------------------------------------
    def on_change(self, listener: AwarenessListener) -> Callable[[], None]:
        """Call ``listener(added, updated, removed)`` when states appear, change or go."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def _notify(self, added: tuple[int, ...], updated: tuple[int, ...], removed: tuple[int, ...]) -> None:
        for cb in list(self._listeners):
            cb(added, updated, removed)
