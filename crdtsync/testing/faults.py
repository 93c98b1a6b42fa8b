"""What a simulated link does to the frames it carries: :class:`LinkFaults`, and the damage
functions behind its ``corrupt`` and ``truncate`` faults.

Faults act on encoded native-protocol frames (the bytes a
:class:`~crdtsync.protocol.Connection` produced), one decision per frame:

- ``drop``: the frame is lost;
- ``duplicate``: it arrives twice;
- ``reorder``: it gets an extra delay of up to ``reorder_delay``, so later frames overtake it;
- ``min_delay`` / ``max_delay``: the latency range;
- ``corrupt``: the frame's envelope is damaged (:func:`corrupt_frame`);
- ``truncate``: the frame is cut short (:func:`truncate_frame`).

Damage is always of a kind the framing layer can detect, so it must surface on the receiver as
a typed :class:`~crdtsync.errors.ProtocolError` (the sim checks that, see
:attr:`~crdtsync.testing.network.SimNetwork.undetected_damage`). Bit flips inside an update
payload are *not* simulated: the native protocol carries no checksum and trusts TCP/TLS for
integrity, so such a flip is undetectable by design.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import msgpack

from ..errors import SimulationError

__all__ = ["RELIABLE", "LinkFaults", "TraceEvent", "corrupt_frame", "truncate_frame"]

_PROBABILITIES = ("drop", "duplicate", "reorder", "corrupt", "truncate")


@dataclass(frozen=True, slots=True)
class TraceEvent:
    """One thing that happened, for determinism checks and for reading a failing run.

    ``what`` is one of: send, deliver, drop, duplicate, reorder, corrupt, truncate, lost_closed,
    connect, open, close, handshake_timeout, protocol_error, remote_error, bad_update,
    undetected_damage, partition, heal, crash, restart, persist, ack, edit, skip_edit, rollback,
    client_mutate, client_settle.
    """

    time: float
    what: str
    src: str = ""
    dst: str = ""
    detail: str = ""


@dataclass(frozen=True, slots=True)
class LinkFaults:
    """Faults on a link. Probabilities are in ``[0, 1]``; delays in seconds (``min <= max``).

    ``reorder`` is the chance a frame gets an extra delay of up to ``reorder_delay``, so
    later frames overtake it. ``corrupt`` and ``truncate`` damage a frame so that the receiver
    must reject it with a typed protocol error (then the connection closes and reconnects).
    """

    drop: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    min_delay: float = 0.001
    max_delay: float = 0.001
    reorder_delay: float = 0.05
    corrupt: float = 0.0
    truncate: float = 0.0

    def __post_init__(self) -> None:
        for name in _PROBABILITIES:
            p = getattr(self, name)
            if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
                raise SimulationError(f"LinkFaults.{name} is a probability in [0, 1], got {p!r}")
        if not 0.0 <= self.min_delay <= self.max_delay:
            raise SimulationError(
                f"LinkFaults needs 0 <= min_delay <= max_delay, got {self.min_delay!r}, {self.max_delay!r}"
            )
        if self.reorder_delay < 0:
            raise SimulationError(f"LinkFaults.reorder_delay must be >= 0, got {self.reorder_delay!r}")

    @property
    def worst_delay(self) -> float:
        """The longest a frame can take on this link."""
        return self.max_delay + (self.reorder_delay if self.reorder else 0.0)


RELIABLE = LinkFaults()


def truncate_frame(frame: bytes, rng: random.Random) -> bytes:
    """A strict prefix of ``frame`` (possibly empty): a msgpack value cut short never decodes."""
    return frame[: rng.randrange(len(frame))] if frame else b""


# Bytes msgpack never uses as a first byte (0xc1) or that are not an array header.
_NOT_AN_ARRAY = (0xC1, 0xC0, 0x00, 0x7F, 0xA1, 0xC4)


def corrupt_frame(frame: bytes, rng: random.Random) -> bytes:
    """Damage ``frame``'s envelope in one of three detectable ways, chosen by ``rng``:
    the array header replaced by a byte that is not one, garbage appended after the message,
    or the message type replaced by one that does not exist."""
    how = rng.randrange(3)
    if how == 0 or len(frame) < 2:
        return bytes([rng.choice(_NOT_AN_ARRAY)]) + frame[1:]
    if how == 1:
        garbage = msgpack.packb(rng.randrange(1 << 16)) or b"\x00"
        return frame + garbage
    # Envelopes begin with a fixarray header (0x90..0x9f) and a fixint type: replace the type.
    if 0x90 <= frame[0] <= 0x9F and frame[1] <= 0x7F:
        return frame[:1] + bytes([rng.randrange(64, 128)]) + frame[2:]
    return bytes([rng.choice(_NOT_AN_ARRAY)]) + frame[1:]
