"""lib0 binary encoding: the subset the Yjs wire protocol (y-websocket, y-protocols) uses.

- ``varUint``: 7 bits per byte, least significant group first; the high bit is set on every
  byte but the last. lib0 (JavaScript) reads at most 53 bits, so :data:`MAX_VAR_UINT` is
  ``2**53 - 1`` and a varUint longer than 8 bytes or larger than that is a :class:`FrameError`.
  Non-minimal encodings (``0x80 0x00`` for 0) are accepted, as lib0 accepts them.
- ``varUint8Array``: a varUint length, then that many bytes.
- ``varString``: a varUint8Array of the string's **UTF-8 bytes**. (pycrdt's
  ``Encoder.write_var_string`` writes the *character* count instead, which corrupts every
  non-ASCII string; do not use it.)

:class:`Decoder` never raises anything but :class:`~crdtsync.errors.FrameError` on bad input.
No I/O here: bytes in, values out.
"""

from __future__ import annotations

from ..errors import FrameError

__all__ = [
    "MAX_VAR_UINT",
    "Decoder",
    "Encoder",
    "encode_var_string",
    "encode_var_uint",
    "encode_var_uint8_array",
]

MAX_VAR_UINT = 2**53 - 1
_MAX_VAR_UINT_BYTES = 8  # 8 * 7 = 56 bits >= 53

BytesLike = bytes | bytearray | memoryview


def encode_var_uint(n: int) -> bytes:
    """The varUint encoding of ``n`` (0 <= n <= MAX_VAR_UINT)."""
    if n < 0 or n > MAX_VAR_UINT:
        raise ValueError(f"varUint out of range: {n}")
    if n < 0x80:
        return bytes((n,))
    out = bytearray()
    while n > 0x7F:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    out.append(n)
    return bytes(out)


def encode_var_uint8_array(data: BytesLike) -> bytes:
    """A varUint length followed by ``data``."""
    return encode_var_uint(len(data)) + bytes(data)


def encode_var_string(text: str) -> bytes:
    """A varUint8Array of the UTF-8 bytes of ``text`` (lone surrogates are an error)."""
    return encode_var_uint8_array(text.encode("utf-8"))


class Encoder:
    """Append-only writer; ``to_bytes()`` returns what was written."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def write_uint8(self, n: int) -> None:
        self._buf.append(n)

    def write_var_uint(self, n: int) -> None:
        self._buf += encode_var_uint(n)

    def write_var_uint8_array(self, data: BytesLike) -> None:
        self._buf += encode_var_uint(len(data))
        self._buf += data

    def write_var_string(self, text: str) -> None:
        self.write_var_uint8_array(text.encode("utf-8"))

    def write_raw(self, data: BytesLike) -> None:
        self._buf += data

    def to_bytes(self) -> bytes:
        return bytes(self._buf)


class Decoder:
    """Reads lib0 values from ``data`` starting at ``pos``.

    Every read raises :class:`FrameError` when the data is truncated or malformed; call
    :meth:`expect_end` when a message must not have trailing bytes.
    """

    __slots__ = ("_data", "_end", "pos")

    def __init__(self, data: BytesLike, pos: int = 0):
        self._data = data if isinstance(data, bytes) else bytes(data)
        self._end = len(self._data)
        self.pos = pos

    @property
    def remaining(self) -> int:
        return self._end - self.pos

    def at_end(self) -> bool:
        return self.pos >= self._end

    def expect_end(self) -> None:
        if self.pos != self._end:
            raise FrameError(f"{self._end - self.pos} trailing byte(s) after the message")

    def read_uint8(self) -> int:
        if self.pos >= self._end:
            raise FrameError("truncated: expected a byte")
        b = self._data[self.pos]
        self.pos += 1
        return b

    def read_var_uint(self) -> int:
        data, pos, end = self._data, self.pos, self._end
        if pos >= end:
            raise FrameError("truncated varUint")
        b = data[pos]
        if b < 0x80:  # fast path: one byte
            self.pos = pos + 1
            return b
        n = 0
        shift = 0
        for i in range(_MAX_VAR_UINT_BYTES):
            if pos + i >= end:
                raise FrameError("truncated varUint")
            b = data[pos + i]
            n |= (b & 0x7F) << shift
            if b < 0x80:
                if n > MAX_VAR_UINT:
                    raise FrameError("varUint larger than 2**53 - 1")
                self.pos = pos + i + 1
                return n
            shift += 7
        raise FrameError(f"overlong varUint (more than {_MAX_VAR_UINT_BYTES} bytes)")

    def read_span(self) -> tuple[int, int]:
        """Read a varUint8Array's length and return its ``(start, end)`` offsets without copying."""
        length = self.read_var_uint()
        start = self.pos
        if length > self._end - start:
            raise FrameError(f"truncated: a {length}-byte array with {self._end - start} byte(s) left")
        self.pos = start + length
        return start, start + length

    def read_var_uint8_array(self) -> bytes:
        start, end = self.read_span()
        return self._data[start:end]

    def read_var_string(self) -> str:
        raw = self.read_var_uint8_array()
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FrameError("varString is not valid UTF-8") from exc
