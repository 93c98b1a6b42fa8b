"""Does a document already contain a write? The question behind "no acknowledged write lost".

A document *contains* a write when

1. every item the write inserted is integrated: the document's state vector reaches the end
   of the write's clock range for its client (state vectors count only integrated items, so
   an update parked as pending does not count), and
2. applying the write's update to a copy of the document changes nothing: its deletions are
   applied (an item deleted later by someone else still counts: deletion is history, not loss).

Use :func:`decode_state_vector` to read a state vector as ``{client_id: clock}``.
"""

from __future__ import annotations

from typing import Any

from pycrdt import Doc

from ..errors import SimulationError

__all__ = ["contains_write", "decode_state_vector"]


def _read_var_uint(data: bytes, pos: int) -> tuple[int, int]:
    value = 0
    shift = 0
    while True:
        if pos >= len(data):
            raise SimulationError("truncated state vector")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, pos


def decode_state_vector(sv: bytes) -> dict[int, int]:
    """``{client_id: clock}`` from a binary Yjs state vector (``doc.get_state()``)."""
    count, pos = _read_var_uint(sv, 0)
    out: dict[int, int] = {}
    for _ in range(count):
        client, pos = _read_var_uint(sv, pos)
        clock, pos = _read_var_uint(sv, pos)
        out[client] = clock
    return out


def contains_write(doc: Doc[Any], update: bytes, client: int, start: int, end: int) -> bool:
    """True when ``doc`` holds the write: its items ``client``:``start..end`` are integrated
    and its ``update`` adds nothing (so its deletions are applied too)."""
    if end > start and decode_state_vector(doc.get_state()).get(client, 0) < end:
        return False
    # Compare two encodings made the same way (the live doc may encode garbage-collected
    # ranges differently from a copy loaded from its update).
    scratch: Doc[Any] = Doc()
    scratch.apply_update(doc.get_update())
    before = scratch.get_update()
    scratch.apply_update(update)
    return bool(scratch.get_update() == before)
