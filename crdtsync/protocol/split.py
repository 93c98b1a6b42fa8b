"""Splitting a Yjs (v1) update into smaller updates, for peers with a message-size limit.

A relay refuses a frame over its ``max_message_size`` (4 MiB by default), and a document of
100,000 entities encodes to 10 to 20 MB. :func:`split_update` cuts such an update at struct
boundaries into parts of at most ``limit`` bytes each. Applied in order, the parts give the
same document as the whole update (the property test in tests/protocol checks it against
pycrdt), so a sender can send them as consecutive messages.

Sans-I/O: bytes in, bytes out. Only the structure is parsed (struct boundaries, lengths in
clock units), never the values. A single struct larger than ``limit`` cannot be cut:
:class:`~crdtsync.errors.MessageTooLargeError`. Bytes that are not a v1 update:
:class:`~crdtsync.errors.FrameError`.

The format (Yjs ``encoding.js`` / yrs ``update.rs``, v1): ``varUint(clients)``, then per
client ``varUint(structs) varUint(client) varUint(clock)`` and the structs, then the delete
set. A struct is an info byte (content ref in the low 5 bits; origin, right origin and
parentSub flags in the top 3), its IDs or parent, and its content.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import FrameError, MessageTooLargeError
from .lib0 import Decoder, encode_var_uint

_GC, _SKIP = 0, 10
_EMPTY_DELETE_SET = encode_var_uint(0)
FRAME_OVERHEAD = 64  # bytes a native Update/SyncStep2 frame adds to its update, the document id aside


def announced_limit(info: Mapping[str, object] | None) -> int | None:
    """The ``max_message_size`` a peer announced in its Hello or Welcome info: an int > 0, or
    None (absent or invalid: nothing sent to it needs cutting)."""
    limit = info.get("max_message_size") if info is not None else None
    if type(limit) is not int or limit <= 0:
        return None
    return limit


def split_for_frames(update: bytes, doc_id: str, limit: int) -> list[bytes]:
    """``update`` cut so that each native frame carrying one part for ``doc_id`` is at most
    ``limit`` bytes (``[update]`` when it fits already). :class:`MessageTooLargeError` when it
    cannot be: a value larger than that, or no room at all."""
    room = limit - FRAME_OVERHEAD - len(doc_id.encode("utf-8"))
    if len(update) <= room:
        return [update]
    if room <= 0:
        raise MessageTooLargeError(f"a {limit}-byte limit leaves no room for an update of {doc_id!r}", limit=limit)
    return split_update(update, room)


def split_update(update: bytes, limit: int) -> list[bytes]:
    """``update`` itself when it is at most ``limit`` bytes, else parts of at most ``limit``
    bytes that, applied in order, have the same effect."""
    if len(update) <= limit:
        return [update]
    d = Decoder(update)
    # client, clock, [(start, end, length)]; a struct cut in pieces becomes (bytes, size, length)
    groups: list[tuple[int, int, list[tuple[Any, int, int]]]] = []
    for _ in range(d.read_var_uint()):
        n = d.read_var_uint()
        client = d.read_var_uint()
        clock = d.read_var_uint()
        structs = []
        for _ in range(n):
            start = d.pos
            length = _skip_struct(d)
            structs.append((start, d.pos, length))
        groups.append((client, clock, structs))
    delete_set = update[d.pos:]
    _skip_delete_set(Decoder(delete_set))
    parts: list[bytes] = []
    for client, clock, structs in groups:
        head = encode_var_uint(1)
        i = 0
        while i < len(structs):
            prefix = head + encode_var_uint(client) + encode_var_uint(clock)
            size = len(prefix) + 10 + len(_EMPTY_DELETE_SET)  # room for the struct count
            j = i
            while j < len(structs) and size + _size(structs[j]) <= limit:
                size += _size(structs[j])
                j += 1
            if j == i:  # one struct alone is too large: cut it (a run of plain array values)
                if not isinstance(structs[i][0], int):
                    raise MessageTooLargeError(f"{limit} bytes is too small to split this update")
                worst = len(head) + len(encode_var_uint(client)) + 10 + 10 + len(_EMPTY_DELETE_SET)  # any clock
                pieces = _cut_struct(update, structs[i][0], client, clock, limit - worst)
                structs[i:i + 1] = pieces
                continue
            body = b"".join(update[s:e] if isinstance(s, int) else s for s, e, _ in structs[i:j])
            parts.append(head + encode_var_uint(j - i) + encode_var_uint(client) + encode_var_uint(clock) + body
                         + _EMPTY_DELETE_SET)
            clock += sum(length for _, _, length in structs[i:j])
            i = j
    if delete_set != _EMPTY_DELETE_SET:
        if len(delete_set) + 1 > limit:
            raise MessageTooLargeError(f"a delete set of {len(delete_set)} bytes does not fit in {limit} bytes",
                                       size=len(delete_set), limit=limit)
        parts.append(encode_var_uint(0) + delete_set)
    return parts


def _size(struct: tuple[Any, int, int]) -> int:
    start, end, _ = struct
    return end - start if isinstance(start, int) else end


def _cut_struct(update: bytes, start: int, client: int, clock: int, room: int) -> list[tuple[Any, int, int]]:
    """Cut the struct at ``start`` (an item holding a run of plain values, as an array of ids
    is stored) into items of at most ``room`` bytes, as yrs itself splits items: each piece
    after the first has the previous piece's last id as its origin and keeps the right origin.
    ``clock`` is the struct's first clock. Anything else that is too large is refused."""
    d = Decoder(update, start)
    info = d.read_uint8()
    if info & 0x1F != 8:
        raise MessageTooLargeError(f"a struct (content {info & 0x1F}) larger than {room} bytes cannot be cut")
    right = b""
    if info & 0x80:
        d.read_var_uint()
        d.read_var_uint()
    if info & 0x40:
        r0 = d.pos
        d.read_var_uint()
        d.read_var_uint()
        right = update[r0:d.pos]
    if not info & 0xC0:  # no origins: the parent follows
        if d.read_var_uint() == 1:
            d.read_var_string()
        else:
            d.read_var_uint()
            d.read_var_uint()
        if info & 0x20:
            d.read_var_string()
    head = update[start:d.pos]
    n = d.read_var_uint()
    offsets = []
    for _ in range(n):
        offsets.append(d.pos)
        _skip_any(d)
    offsets.append(d.pos)
    pieces: list[tuple[Any, int, int]] = []
    i = 0
    while i < n:
        if i == 0:
            prefix = head
        else:  # origin: the last value of the previous piece; the same right origin
            origin = encode_var_uint(client) + encode_var_uint(clock + i - 1)
            prefix = bytes([8 | 0x80 | (info & 0x40)]) + origin + right
        budget = room - len(prefix) - len(encode_var_uint(n))
        j = i
        while j < n and offsets[j + 1] - offsets[i] <= budget:
            j += 1
        if j == i:
            raise MessageTooLargeError(f"one value of {offsets[i + 1] - offsets[i]} bytes does not fit in {room} bytes",
                                      size=offsets[i + 1] - offsets[i], limit=room)
        data = prefix + encode_var_uint(j - i) + update[offsets[i]:offsets[j]]
        pieces.append((data, len(data), j - i))
        i = j
    return pieces


def _skip_struct(d: Decoder) -> int:
    """Skip one struct; return its length in clock units."""
    info = d.read_uint8()
    ref = info & 0x1F
    if ref in (_GC, _SKIP):
        return d.read_var_uint()
    has_origin, has_right = info & 0x80, info & 0x40
    if has_origin:
        d.read_var_uint()
        d.read_var_uint()
    if has_right:
        d.read_var_uint()
        d.read_var_uint()
    if not has_origin and not has_right:
        if d.read_var_uint() == 1:  # the parent is a root type, by name
            d.read_var_string()
        else:  # the parent is the item with this id
            d.read_var_uint()
            d.read_var_uint()
        if info & 0x20:
            d.read_var_string()  # parentSub: the map key
    return _skip_content(d, ref)


def _skip_content(d: Decoder, ref: int) -> int:
    if ref == 1:  # deleted
        return d.read_var_uint()
    if ref == 2:  # JSON: len strings
        n = d.read_var_uint()
        for _ in range(n):
            d.read_var_string()
        return n
    if ref == 3:  # binary
        d.read_span()
        return 1
    if ref == 4:  # string: its length is in UTF-16 code units
        return len(d.read_var_string().encode("utf-16-le")) // 2
    if ref == 5:  # embed (JSON)
        d.read_var_string()
        return 1
    if ref == 6:  # format: key, JSON value
        d.read_var_string()
        d.read_var_string()
        return 1
    if ref == 7:  # a shared type
        type_ref = d.read_var_uint()
        if type_ref in (3, 5):  # XmlElement, XmlHook: a name
            d.read_var_string()
        return 1
    if ref == 8:  # any: len values
        n = d.read_var_uint()
        for _ in range(n):
            _skip_any(d)
        return n
    if ref == 9:  # a subdocument: guid, options
        d.read_var_string()
        _skip_any(d)
        return 1
    raise FrameError(f"unknown struct content {ref} in an update")


def _skip_any(d: Decoder) -> None:
    tag = d.read_uint8()
    if tag in (127, 126, 121, 120):  # undefined, null, false, true
        return
    if tag == 125:  # varInt
        while d.read_uint8() & 0x80:
            pass
    elif tag == 124:
        _skip_bytes(d, 4)
    elif tag in (123, 122):
        _skip_bytes(d, 8)
    elif tag == 119:
        d.read_span()
    elif tag == 118:  # object
        for _ in range(d.read_var_uint()):
            d.read_span()
            _skip_any(d)
    elif tag == 117:  # array
        for _ in range(d.read_var_uint()):
            _skip_any(d)
    elif tag == 116:  # bytes
        d.read_span()
    else:
        raise FrameError(f"unknown lib0 any tag {tag} in an update")


def _skip_bytes(d: Decoder, n: int) -> None:
    if d.remaining < n:
        raise FrameError("truncated update")
    d.pos += n


def _skip_delete_set(d: Decoder) -> None:
    for _ in range(d.read_var_uint()):
        d.read_var_uint()
        for _ in range(d.read_var_uint()):
            d.read_var_uint()
            d.read_var_uint()
    d.expect_end()
