"""Merge Yjs updates into one, fast and without losing anything.

``pycrdt.merge_updates`` is quadratic in the number of updates (about 0.55 s for 10,000);
applying them into a scratch document and encoding it gives the same state about 25 times
faster, so :func:`merge` does that.

One trap, found while testing this store: when an update arrives before one it depends on,
pycrdt keeps it *pending* inside the document, and ``Doc.get_update()`` leaves pending
structs out, and likewise deletions of items it does not have. So :func:`merge` diffs every
input against the scratch document's state vector (``pycrdt.get_update(update, sv)``, linear
and cheap); if any input still has structs the document lacks, or deletes a range the document
has not integrated, it falls back to ``pycrdt.merge_updates``, which keeps them.

A *partial* batch (updates whose earlier history is stored elsewhere, e.g. a relay room's
unflushed writes) routinely contains deletions of items from that earlier history: such a
batch should go through :func:`merge_batch`, which never uses a scratch document.
"""

from __future__ import annotations

from collections.abc import Sequence

from pycrdt import Doc, get_update, merge_updates

from ..errors import CorruptStoreError
from ..protocol.lib0 import Decoder

EMPTY_UPDATE = b"\x00\x00"

#: ``pycrdt.merge_updates`` is quadratic in the number of inputs: merge chunks of this many.
MERGE_CHUNK = 256


def merge(updates: Sequence[bytes], *, doc_id: str = "?") -> bytes:
    """Return one update equivalent to ``updates`` applied in order.

    Raises :class:`~crdtsync.errors.CorruptStoreError` if one of them does not decode.
    """
    doc: Doc = Doc()  # type: ignore[type-arg]
    with doc.transaction():
        for index, update in enumerate(updates):
            try:
                doc.apply_update(update)
            except Exception as exc:  # pycrdt raises ValueError, or a Rust panic exception
                raise CorruptStoreError(f"document {doc_id!r}: update #{index} does not decode") from exc
    if has_pending(doc, updates):
        return bytes(merge_updates(*updates))  # something is pending: keep it
    return bytes(doc.get_update())


def merge_batch(updates: Sequence[bytes], *, doc_id: str = "?", chunk: int = MERGE_CHUNK) -> bytes:
    """Merge ``updates`` without a scratch document (safe for a partial batch: deletions of
    items outside the batch are kept). Chunked, so it stays linear-ish in ``len(updates)``.

    Raises :class:`~crdtsync.errors.CorruptStoreError` if one of them does not decode.
    """
    if not updates:
        return EMPTY_UPDATE
    level = list(updates)
    while len(level) > 1:
        nxt: list[bytes] = []
        for start in range(0, len(level), chunk):
            part = level[start : start + chunk]
            try:
                nxt.append(part[0] if len(part) == 1 else bytes(merge_updates(*part)))
            except Exception as exc:  # pycrdt raises ValueError, or a Rust panic exception
                raise CorruptStoreError(f"document {doc_id!r}: a batch of updates does not decode") from exc
        level = nxt
    return level[0]


def has_pending(doc: Doc, updates: Sequence[bytes]) -> bool:  # type: ignore[type-arg]
    """True if some of ``updates`` holds structs that ``doc`` has not integrated, or deletes
    a range ``doc`` does not have (pycrdt keeps such a deletion pending and drops it from
    ``get_update()``)."""
    sv = doc.get_state()
    clocks = _state_vector(sv)
    for update in updates:
        diff = get_update(update, sv)
        # an update starts with the varUint count of clients that have structs: 0 means none
        if diff[:1] != b"\x00" or not _deletes_covered(diff, clocks):
            return True
    return False


def _state_vector(sv: bytes) -> dict[int, int]:
    dec = Decoder(sv)
    return {dec.read_var_uint(): dec.read_var_uint() for _ in range(dec.read_var_uint())}


def _deletes_covered(diff: bytes, clocks: dict[int, int]) -> bool:
    """``diff`` is an update without structs (``00`` then its delete set): True if every
    deleted range lies below ``clocks`` (so the document has the items it deletes)."""
    dec = Decoder(diff, 1)
    for _ in range(dec.read_var_uint()):
        client = dec.read_var_uint()
        known = clocks.get(client, 0)
        for _ in range(dec.read_var_uint()):
            clock, length = dec.read_var_uint(), dec.read_var_uint()
            if clock + length > known:
                return False
    return True


def validate(update: bytes) -> None:
    """Raise ``ValueError`` if ``update`` is not a decodable Yjs update."""
    doc: Doc = Doc()  # type: ignore[type-arg]
    try:
        doc.apply_update(update)
    except Exception as exc:
        raise ValueError(str(exc)) from exc
