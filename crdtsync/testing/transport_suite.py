"""The conformance suite every :class:`~crdtsync.transport.base.Transport` passes.

Modelled on trio's ``check_two_way_stream``. Give it a factory of connected pairs::

    from crdtsync.testing.transport_suite import check_transport
    from crdtsync.transport import memory_pair

    async def test_memory_transport():
        async def make_pair():
            return memory_pair(max_size=1 << 20)
        await check_transport(make_pair, max_size=1 << 20)

``make_pair()`` returns a fresh ``(a, b)`` pair each time; the suite closes both ends after
each check. A transport must buffer at least two unreceived frames without blocking ``send``.
Symmetric checks run twice, the second time with ``a`` and ``b`` swapped.

To report each check as its own test, parametrize over :data:`CHECKS` and call
:func:`run_check` instead. No check sleeps: every wait is on a frame or a close, bounded by
``timeout`` seconds so a broken transport fails instead of hanging.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from ..errors import TransportError
from ..transport.base import Transport

__all__ = ["CHECKS", "MakePair", "check_transport", "run_check"]

MakePair = Callable[[], Awaitable[tuple[Transport, Transport]]]
Check = Callable[[Transport, Transport, int], Awaitable[None]]


async def _expect_transport_error(aw: Awaitable[object], what: str) -> None:
    try:
        result = await aw
    except TransportError:
        return
    raise AssertionError(f"{what}: expected TransportError, got {result!r}")


async def check_ordered_delivery(a: Transport, b: Transport, max_size: int) -> None:
    """Frames arrive in order, as bytes, with their exact content."""
    frames = [i.to_bytes(2, "big") * (i % 7 + 1) for i in range(200)]

    async def sender() -> None:  # concurrently: a transport may apply backpressure
        for f in frames:
            await a.send(f)

    task = asyncio.ensure_future(sender())
    got = [await b.recv() for _ in frames]
    await task
    assert got == frames, "frames were reordered or altered"
    assert all(type(g) is bytes for g in got), "recv() must return bytes"


async def check_binary_content(a: Transport, b: Transport, max_size: int) -> None:
    """Every byte value and the empty frame survive."""
    for f in (bytes(range(256)), b"", b"\x00", b"\xff" * 3):
        await a.send(f)
        assert await b.recv() == f


async def check_both_directions_at_once(a: Transport, b: Transport, max_size: int) -> None:
    """Both ends send and receive concurrently."""
    n = 100

    async def pump(src: Transport, dst: Transport, tag: bytes) -> list[bytes]:
        async def sender() -> None:
            for i in range(n):
                await src.send(tag + i.to_bytes(4, "big"))

        task = asyncio.ensure_future(sender())
        got = [await dst.recv() for _ in range(n)]
        await task
        return got

    ab, ba = await asyncio.gather(pump(a, b, b"A"), pump(b, a, b"B"))
    assert ab == [b"A" + i.to_bytes(4, "big") for i in range(n)]
    assert ba == [b"B" + i.to_bytes(4, "big") for i in range(n)]


async def check_large_frames(a: Transport, b: Transport, max_size: int) -> None:
    """A frame of exactly ``max_size`` bytes gets through, and so does a small one after it."""
    big = bytes(i % 251 for i in range(max_size))
    sender = asyncio.ensure_future(a.send(big))
    assert await b.recv() == big
    await sender
    await a.send(b"after")
    assert await b.recv() == b"after"


async def check_close_drains_then_raises(a: Transport, b: Transport, max_size: int) -> None:
    """Frames sent before a close are delivered; then recv raises TransportError on both ends,
    and send raises on the closing end."""
    for f in (b"1", b"2"):
        await a.send(f)
    await a.close()
    assert a.closed
    await _expect_transport_error(a.send(b"x"), "send after close")
    await _expect_transport_error(a.recv(), "recv after close")
    assert [await b.recv() for _ in range(2)] == [b"1", b"2"]
    await _expect_transport_error(b.recv(), "recv after the peer closed")
    await b.wait_closed()
    assert b.closed


async def check_close_wakes_a_blocked_recv(a: Transport, b: Transport, max_size: int) -> None:
    """A recv waiting on one end is woken with TransportError when the other end closes."""
    waiting = asyncio.ensure_future(b.recv())
    await asyncio.sleep(0)
    await a.close()
    await _expect_transport_error(waiting, "recv blocked across the peer's close")


async def check_send_after_peer_closed(a: Transport, b: Transport, max_size: int) -> None:
    """Once the peer has closed (and we know it), send raises TransportError."""
    await b.close()
    await a.wait_closed()
    assert a.closed
    await _expect_transport_error(a.send(b"x"), "send after the peer closed")


async def check_close_is_idempotent(a: Transport, b: Transport, max_size: int) -> None:
    """close() twice, on both ends, in any order, is fine; wait_closed returns on both."""
    await a.close()
    await a.close()
    await b.close()
    await a.wait_closed()
    await b.wait_closed()
    assert a.closed and b.closed


CHECKS: dict[str, Check] = {
    "ordered_delivery": check_ordered_delivery,
    "binary_content": check_binary_content,
    "both_directions_at_once": check_both_directions_at_once,
    "large_frames": check_large_frames,
    "close_drains_then_raises": check_close_drains_then_raises,
    "close_wakes_a_blocked_recv": check_close_wakes_a_blocked_recv,
    "send_after_peer_closed": check_send_after_peer_closed,
    "close_is_idempotent": check_close_is_idempotent,
}


async def run_check(name: str, make_pair: MakePair, *, max_size: int, timeout: float = 10.0) -> None:
    """Run check ``name`` twice: on ``(a, b)`` and on a fresh pair with the roles swapped."""
    if max_size < 1:
        raise ValueError("max_size must be >= 1")
    check = CHECKS[name]
    for swapped in (False, True):
        a, b = await make_pair()
        if swapped:
            a, b = b, a
        try:
            async with asyncio.timeout(timeout):
                await check(a, b, max_size)
        except TimeoutError:
            raise AssertionError(f"{name} (swapped={swapped}) timed out after {timeout} s") from None
        finally:
            await a.close()
            await b.close()


async def check_transport(make_pair: MakePair, *, max_size: int, timeout: float = 10.0) -> None:
    """Run every check in :data:`CHECKS`, both ways round."""
    for name in CHECKS:
        await run_check(name, make_pair, max_size=max_size, timeout=timeout)
