"""Framing of native-protocol messages on a byte stream (the local Unix socket). Sans-I/O.

The local channel speaks the same messages as the relay (:mod:`crdtsync.protocol.native`,
msgpack arrays routed by document id), so there is one wire format to test and document. A
websocket delimits frames itself; a Unix stream socket does not, so each frame is preceded by
its length as 4 bytes, big-endian::

    +----------------+---------------------------------+
    | length (u32 BE)| native frame (msgpack array)    |
    +----------------+---------------------------------+

Use :func:`encode_frame` to send and feed received bytes to a :class:`FrameReader`, then call
:meth:`FrameReader.messages`. A frame longer than ``max_frame`` bytes raises
:class:`~crdtsync.errors.MessageTooLargeError`; a malformed one
:class:`~crdtsync.errors.FrameError`. Neither is ever another exception type.
"""

from __future__ import annotations

import struct

from ..errors import MessageTooLargeError
from ..protocol import native

HEADER = struct.Struct(">I")
DEFAULT_MAX_FRAME = 64 << 20


def encode_frame(msg: native.NativeMessage) -> bytes:
    """The length-prefixed bytes for ``msg``."""
    body = native.encode(msg)
    return HEADER.pack(len(body)) + body


class FrameReader:
    """Accumulates stream bytes and cuts them into native messages."""

    def __init__(self, *, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        if max_frame < 16:
            raise ValueError("max_frame must be at least 16 bytes")
        self.max_frame = max_frame
        self._buf = bytearray()

    def feed(self, data: bytes) -> None:
        """Add bytes read from the stream."""
        self._buf += data

    def messages(self) -> list[native.NativeMessage]:
        """Every complete message fed so far, in order. Raises on the first bad frame."""
        out: list[native.NativeMessage] = []
        buf = self._buf
        pos = 0
        try:
            while len(buf) - pos >= HEADER.size:
                (size,) = HEADER.unpack_from(buf, pos)
                if size > self.max_frame:
                    raise MessageTooLargeError(f"a {size}-byte frame exceeds the {self.max_frame}-byte limit",
                                               size=size, limit=self.max_frame)
                end = pos + HEADER.size + size
                if len(buf) < end:
                    break
                out.append(native.decode(bytes(buf[pos + HEADER.size : end])))
                pos = end
        finally:
            del buf[:pos]
        return out

    @property
    def buffered(self) -> int:
        """Bytes held waiting for the rest of a frame."""
        return len(self._buf)
