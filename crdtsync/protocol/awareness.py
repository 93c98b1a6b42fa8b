"""Awareness (presence): the y-protocols payload codec and a sans-I/O registry for relays.

Payload format (lib0, see ``lib0.py``)::

    varUint count
    count x ( varUint clientID, varUint clock, varString JSON state )   # JSON "null" = removed

States are kept as the **exact UTF-8 JSON bytes** received, so a non-ASCII state is forwarded
byte for byte; they are parsed only to validate them.

Validation (:class:`AwarenessLimits`) happens before anything is applied; a bad payload raises
:class:`InvalidAwarenessError` (a :class:`~crdtsync.errors.FrameError`), or one of its two
subclasses for limits: :class:`AwarenessTooLargeError` (payload bytes or client count) and
:class:`AwarenessTooDeepError` (JSON nesting). JSON that JavaScript's ``JSON.parse`` would
reject (``NaN``, ``Infinity``, an empty string, invalid UTF-8) is invalid here too, because a
relay would otherwise crash the stock clients it forwards it to.

:class:`AwarenessRegistry` is what a relay room keeps, one for all its connections, whatever
protocol they speak:

- ``apply(payload, owner)`` -> :class:`AwarenessChange`: the clock rules of y-protocols (a higher
  clock wins; an equal clock with ``null`` removes), which clients were added, updated (state
  changed), renewed (same state, newer clock) or removed, and ``payload``: the bytes to
  broadcast, holding only the entries that took effect (the original bytes when all did, ``b""``
  when none did). Stock y-websocket clients re-send every state they receive; those echoes carry
  no newer clock, so they produce an empty payload and the relay sends nothing: awareness traffic
  stays linear in the number of clients.
- ``remove_owner(owner)`` -> the removal payload to broadcast when a connection closes.
- ``encode_all()`` -> every live state, for a newcomer (and for QueryAwareness).
- ``expire()`` -> removals for states not renewed within ``timeout`` (30 s, as y-protocols);
  time comes from the injected ``clock`` callable, so tests move it by hand. Call it every few
  seconds, or at :meth:`AwarenessRegistry.next_expiry`.

One deliberate difference from y-protocols: the first state seen for an unknown client is
accepted even at clock 0 (y-protocols' ``0 < 0`` test drops it until the client's next renewal).
Ownership follows the connection that last advanced a client's clock, so a client that reconnects
on a new socket before the old one is noticed dead keeps its presence.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import (  # defined with the rest of the tree; importable from here too
    AwarenessNotOwnedError,
    AwarenessTooDeepError,
    AwarenessTooLargeError,
    FrameError,
    InvalidAwarenessError,
)
from .lib0 import Decoder, Encoder

__all__ = [
    "DEFAULT_LIMITS",
    "AwarenessChange",
    "AwarenessEntry",
    "AwarenessLimits",
    "AwarenessRegistry",
    "AwarenessTooDeepError",
    "AwarenessTooLargeError",
    "InvalidAwarenessError",
    "AwarenessNotOwnedError",
    "decode_awareness",
    "encode_awareness",
    "state_json",
]

NULL = b"null"






@dataclass(frozen=True, slots=True)
class AwarenessLimits:
    """What a single awareness payload may hold. A y-websocket client echoes every state it
    receives in one message, so ``max_clients`` must cover the largest room."""

    max_payload_bytes: int = 256 * 1024
    max_clients: int = 1024
    max_depth: int = 32
    #: client ids an :class:`AwarenessRegistry` keeps at once (live states and removal
    #: markers); a payload that would add more is rejected (AwarenessTooLargeError).
    max_registry_clients: int = 10_000

    def __post_init__(self) -> None:
        for name in ("max_payload_bytes", "max_clients", "max_depth", "max_registry_clients"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")


DEFAULT_LIMITS = AwarenessLimits()


@dataclass(frozen=True, slots=True)
class AwarenessEntry:
    """One client's state in a payload. ``state`` is the UTF-8 JSON text exactly as received
    (``b"null"`` for a removal); :meth:`value` parses it."""

    client_id: int
    clock: int
    state: bytes

    @property
    def removed(self) -> bool:
        return self.state == NULL

    def value(self) -> Any:
        return json.loads(self.state)


def state_json(value: Any) -> bytes:
    """Compact UTF-8 JSON for a state (non-ASCII kept as is, no NaN/Infinity)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def encode_awareness(entries: Iterable[AwarenessEntry]) -> bytes:
    """The payload for ``entries`` (states written as their stored bytes)."""
    items = list(entries)
    enc = Encoder()
    enc.write_var_uint(len(items))
    for e in items:
        enc.write_var_uint(e.client_id)
        enc.write_var_uint(e.clock)
        enc.write_var_uint8_array(e.state)
    return enc.to_bytes()


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _depth(value: Any, limit: int) -> int:
    """Nesting depth of a parsed JSON value (scalars 0), stopping early past ``limit``."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, dict):
            children: Iterable[Any] = v.values()
        elif isinstance(v, list):
            children = v
        else:
            continue
        d += 1
        if d > deepest:
            deepest = d
            if deepest > limit:
                return deepest
        stack.extend((c, d) for c in children)
    return deepest


def _canonical_state(raw: bytes, limits: AwarenessLimits) -> bytes:
    """Validate one JSON state; returns ``raw`` (or ``b"null"`` when it parses to null)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidAwarenessError("awareness state is not valid UTF-8") from exc
    # Fast path: fewer brackets than the limit cannot nest deeper than it.
    may_be_deep = text.count("[") + text.count("{") > limits.max_depth
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except RecursionError as exc:
        raise AwarenessTooDeepError("awareness state nests too deeply") from exc
    except ValueError as exc:
        raise InvalidAwarenessError(f"awareness state is not valid JSON: {exc}") from exc
    if may_be_deep and _depth(value, limits.max_depth) > limits.max_depth:
        raise AwarenessTooDeepError(f"awareness state nests deeper than {limits.max_depth}")
    return NULL if value is None else raw


def decode_awareness(payload: bytes, limits: AwarenessLimits = DEFAULT_LIMITS) -> list[AwarenessEntry]:
    """Decode and validate a payload. Raises :class:`InvalidAwarenessError` (or a subclass);
    never anything else."""
    if len(payload) > limits.max_payload_bytes:
        raise AwarenessTooLargeError(f"awareness payload of {len(payload)} bytes exceeds {limits.max_payload_bytes}")
    d = Decoder(payload)
    try:
        count = d.read_var_uint()
        if count > limits.max_clients:
            raise AwarenessTooLargeError(f"awareness payload lists {count} clients, limit {limits.max_clients}")
        entries = []
        for _ in range(count):
            client_id = d.read_var_uint()
            clock = d.read_var_uint()
            raw = d.read_var_uint8_array()
            entries.append(AwarenessEntry(client_id, clock, _canonical_state(raw, limits)))
        d.expect_end()
    except InvalidAwarenessError:
        raise
    except FrameError as exc:
        raise InvalidAwarenessError(f"malformed awareness payload: {exc}") from exc
    return entries


# -- the registry --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AwarenessChange:
    """What :meth:`AwarenessRegistry.apply` did. ``payload`` is what to broadcast (``b""``:
    nothing); ``changed`` is False for pure renewals and echoes."""

    added: tuple[int, ...] = ()
    updated: tuple[int, ...] = ()
    renewed: tuple[int, ...] = ()
    removed: tuple[int, ...] = ()
    payload: bytes = b""

    @property
    def changed(self) -> bool:
        """True when a state appeared, changed or disappeared (renewals do not count)."""
        return bool(self.added or self.updated or self.removed)

    @property
    def applied(self) -> bool:
        """True when anything took effect (including renewals): ``payload`` is worth sending."""
        return bool(self.payload)


@dataclass(slots=True)
class _Client:
    clock: int
    state: bytes  # b"null" once removed (a tombstone that remembers the clock)
    updated_at: float
    owner: Hashable | None = None
    principal: Hashable | None = None  # who the owner is (a token's subject), if known


@dataclass
class AwarenessRegistry:
    """The awareness states of one room, with their owners. Sans-I/O: call it, send what it
    returns. ``clock`` returns seconds (monotonic or not, only differences matter)."""

    clock: Callable[[], float] = time.monotonic
    timeout: float = 30.0
    limits: AwarenessLimits = DEFAULT_LIMITS
    _clients: dict[int, _Client] = field(default_factory=dict, init=False, repr=False)
    _owned: dict[Hashable, set[int]] = field(default_factory=dict, init=False, repr=False)

    # -- queries ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return sum(1 for c in self._clients.values() if c.state != NULL)

    def states(self) -> dict[int, bytes]:
        """Live states: client id -> JSON bytes."""
        return {cid: c.state for cid, c in self._clients.items() if c.state != NULL}

    def clock_of(self, client_id: int) -> int | None:
        c = self._clients.get(client_id)
        return None if c is None else c.clock

    def owned_by(self, owner: Hashable) -> frozenset[int]:
        return frozenset(self._owned.get(owner, ()))

    def encode_all(self) -> bytes | None:
        """Every live state as one payload (None when there is none)."""
        live = [AwarenessEntry(cid, c.clock, c.state) for cid, c in self._clients.items() if c.state != NULL]
        return encode_awareness(live) if live else None

    def next_expiry(self) -> float | None:
        """When (in ``clock`` time) the oldest entry (a live state, or a removal marker to
        forget) expires, or None when the registry is empty."""
        if not self._clients:
            return None
        return min(c.updated_at for c in self._clients.values()) + self.timeout

    # -- changes ---------------------------------------------------------------------------
    def apply(self, payload: bytes, owner: Hashable, *, principal: Hashable | None = None) -> AwarenessChange:
        """Validate ``payload`` and apply it on behalf of connection ``owner``, whose user is
        ``principal`` (a token's subject; None: unknown).

        Raises :class:`InvalidAwarenessError` (nothing applied) for a bad payload."""
        entries = decode_awareness(payload, self.limits)
        return self.apply_entries(entries, owner, original=payload, principal=principal)

    def apply_entries(
        self, entries: Sequence[AwarenessEntry], owner: Hashable, *, original: bytes | None = None,
        principal: Hashable | None = None,
    ) -> AwarenessChange:
        """Apply already-validated entries (``original``: their payload, reused when all apply).

        Raises :class:`AwarenessTooLargeError` (nothing applied) if the registry would hold
        more than ``limits.max_registry_clients`` client ids, and
        :class:`AwarenessNotOwnedError` (nothing applied) if an entry would change or remove a
        state another owner holds, unless both owners have the same non-None ``principal`` (the
        same user reconnecting on a new socket before the old one is seen to close: ownership
        moves). Entries about others' states that change nothing (a stock client echoing what it
        received) are ignored, not refused."""
        foreign = tuple(
            e.client_id for e in entries
            if (cur := self._clients.get(e.client_id)) is not None and cur.owner is not None
            and cur.owner != owner and (principal is None or cur.principal != principal)
            and (e.clock > cur.clock or (e.clock == cur.clock and e.removed and cur.state != NULL))
        )
        if foreign:
            raise AwarenessNotOwnedError(
                f"client id(s) {', '.join(map(str, foreign[:5]))} belong to another connection", client_ids=foreign
            )
        self._make_room(entries)
        now = self.clock()
        added: list[int] = []
        updated: list[int] = []
        renewed: list[int] = []
        removed: list[int] = []
        applied: list[AwarenessEntry] = []
        for e in entries:
            cur = self._clients.get(e.client_id)
            if cur is None:
                if e.removed:
                    # Removing what we never saw: nothing to do, nothing to remember (a later
                    # state at an older clock would be a stale one we cannot tell apart anyway).
                    continue
                self._clients[e.client_id] = _Client(e.clock, e.state, now)
                self._own(e.client_id, owner, principal)
                added.append(e.client_id)
                applied.append(e)
                continue
            live = cur.state != NULL
            if e.clock > cur.clock or (e.clock == cur.clock and e.removed and live):
                cur.clock = e.clock
                cur.updated_at = now
                if e.removed:
                    cur.state = NULL
                    self._disown(e.client_id)
                    if live:
                        removed.append(e.client_id)
                        applied.append(e)
                    continue
                if not live:
                    added.append(e.client_id)
                elif cur.state != e.state:
                    updated.append(e.client_id)
                else:
                    renewed.append(e.client_id)
                cur.state = e.state
                self._own(e.client_id, owner, principal)
                applied.append(e)
        if not applied:
            out = b""
        elif original is not None and len(applied) == len(entries):
            out = original
        else:
            out = encode_awareness(applied)
        return AwarenessChange(tuple(added), tuple(updated), tuple(renewed), tuple(removed), out)

    def _make_room(self, entries: Sequence[AwarenessEntry]) -> None:
        new = {e.client_id for e in entries if not e.removed and e.client_id not in self._clients}
        excess = len(self._clients) + len(new) - self.limits.max_registry_clients
        if excess <= 0:
            return
        markers = sorted((c.updated_at, cid) for cid, c in self._clients.items() if c.state == NULL)
        if len(markers) < excess:
            raise AwarenessTooLargeError(
                f"awareness registry is full ({self.limits.max_registry_clients} clients)"
            )
        for _, cid in markers[:excess]:  # forget the oldest removal markers first
            del self._clients[cid]

    def remove_owner(self, owner: Hashable) -> bytes | None:
        """Forget connection ``owner``: its clients' states are removed. Returns the removal
        payload to broadcast to the others (None when it owned no live state)."""
        ids = self._owned.pop(owner, set())
        return self._remove(sorted(ids))

    def expire(self) -> bytes | None:
        """Remove states not renewed within ``timeout``; returns their removal payload (or None).
        Also forgets removal tombstones older than ``timeout``."""
        now = self.clock()
        stale = []
        for cid, c in list(self._clients.items()):
            if now - c.updated_at >= self.timeout:
                if c.state == NULL:
                    del self._clients[cid]
                else:
                    stale.append(cid)
        for cid in stale:
            self._disown(cid)
        return self._remove(stale)

    def _remove(self, ids: Sequence[int]) -> bytes | None:
        now = self.clock()
        gone = []
        for cid in ids:
            c = self._clients.get(cid)
            if c is None or c.state == NULL:
                continue
            c.state = NULL
            c.updated_at = now
            c.owner = None
            gone.append(AwarenessEntry(cid, c.clock, NULL))
        return encode_awareness(gone) if gone else None

    def _own(self, client_id: int, owner: Hashable, principal: Hashable | None) -> None:
        c = self._clients[client_id]
        if c.owner is not None and c.owner != owner:
            self._disown(client_id)
        c.owner = owner
        c.principal = principal
        self._owned.setdefault(owner, set()).add(client_id)

    def _disown(self, client_id: int) -> None:
        c = self._clients.get(client_id)
        if c is None or c.owner is None:
            return
        ids = self._owned.get(c.owner)
        if ids is not None:
            ids.discard(client_id)
            if not ids:
                del self._owned[c.owner]
        c.owner = None
