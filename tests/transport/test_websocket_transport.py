"""The websocket transport passes the conformance suite against a loopback server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from websockets.asyncio.server import ServerConnection, serve

from crdtsync.errors import TransportError
from crdtsync.testing.transport_suite import CHECKS, MakePair, run_check
from crdtsync.transport import Transport, WebSocketTransport, connect_websocket

MAX = 256 * 1024


@pytest.fixture
async def make_pair() -> AsyncIterator[MakePair]:
    accepted: asyncio.Queue[WebSocketTransport] = asyncio.Queue()

    async def handler(ws: ServerConnection) -> None:
        await accepted.put(WebSocketTransport(ws))
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0, max_size=MAX, ping_interval=None, compression=None) as server:
        port = server.sockets[0].getsockname()[1]

        async def make() -> tuple[Transport, Transport]:
            client = await connect_websocket(f"ws://127.0.0.1:{port}/", max_size=MAX)
            return client, await accepted.get()

        yield make


@pytest.mark.parametrize("check", list(CHECKS))
async def test_conformance(check: str, make_pair: MakePair) -> None:
    await run_check(check, make_pair, max_size=MAX)


async def test_connect_failure_is_a_transport_error() -> None:
    with pytest.raises(TransportError):
        # port 1 on loopback: refused
        await connect_websocket("ws://127.0.0.1:1/", open_timeout=2)
    with pytest.raises(TransportError):
        await connect_websocket("not a url")


async def test_oversized_frame_closes_the_connection(make_pair: MakePair) -> None:
    client, server = await make_pair()
    await client.send(b"x" * (MAX + 1))
    with pytest.raises(TransportError):
        await server.recv()
    with pytest.raises(TransportError):
        await client.recv()
