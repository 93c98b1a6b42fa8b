"""memory_pair passes the transport conformance suite, plus its own extras."""

from __future__ import annotations

import asyncio

import pytest

from crdtsync.errors import TransportError
from crdtsync.testing.transport_suite import CHECKS, run_check
from crdtsync.transport import CLOSE_TOO_LARGE, ConnectionClosed, Transport, memory_pair

MAX = 256 * 1024


async def make_pair() -> tuple[Transport, Transport]:
    return memory_pair(max_size=MAX)


@pytest.mark.parametrize("check", list(CHECKS))
async def test_conformance(check: str) -> None:
    await run_check(check, make_pair, max_size=MAX)


async def test_conformance_with_a_bounded_queue() -> None:
    async def bounded() -> tuple[Transport, Transport]:
        return memory_pair(max_queue=2, max_size=MAX)

    for check in CHECKS:
        await run_check(check, bounded, max_size=MAX)


async def test_is_a_transport() -> None:
    a, b = memory_pair()
    assert isinstance(a, Transport) and isinstance(b, Transport)


async def test_bounded_queue_applies_backpressure() -> None:
    a, b = memory_pair(max_queue=2)
    await a.send(b"1")
    await a.send(b"2")
    blocked = asyncio.ensure_future(a.send(b"3"))
    await asyncio.sleep(0)
    assert not blocked.done() and b.pending == 2
    assert await b.recv() == b"1"
    await blocked
    assert [await b.recv(), await b.recv()] == [b"2", b"3"]


async def test_oversized_frame_closes_with_1009() -> None:
    a, b = memory_pair(max_size=4)
    await a.send(b"12345")
    with pytest.raises(ConnectionClosed) as exc:
        await b.recv()
    assert exc.value.code == CLOSE_TOO_LARGE
    with pytest.raises(TransportError):
        await a.send(b"1")


async def test_abort_reports_1006() -> None:
    a, b = memory_pair()
    a.abort()
    with pytest.raises(ConnectionClosed) as exc:
        await b.recv()
    assert exc.value.code == 1006


async def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        memory_pair(max_queue=0)
    a, _ = memory_pair()
    with pytest.raises(TypeError):
        await a.send("text")  # type: ignore[arg-type]
