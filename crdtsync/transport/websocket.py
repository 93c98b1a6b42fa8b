"""A websocket :class:`~crdtsync.transport.base.Transport` over the ``websockets`` library.

:func:`connect_websocket` opens a client connection; :class:`WebSocketTransport` also wraps an
accepted server-side connection. Every ``websockets`` exception (and ``OSError``, timeouts) is
wrapped into :class:`~crdtsync.errors.TransportError` here, at the boundary, with the original
kept as ``__cause__``. Binary frames only: a text frame is returned as its UTF-8 bytes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

from websockets.asyncio.client import connect
from websockets.asyncio.connection import Connection
from websockets.exceptions import ConnectionClosed as WsConnectionClosed
from websockets.exceptions import WebSocketException
from websockets.protocol import State

from ..errors import TransportError
from .base import CLOSE_NORMAL, ConnectionClosed

__all__ = ["DEFAULT_MAX_SIZE", "WebSocketTransport", "connect_websocket"]

DEFAULT_MAX_SIZE = 16 * 1024 * 1024


def _closed(exc: WsConnectionClosed) -> ConnectionClosed:
    frame = exc.rcvd or exc.sent
    code = frame.code if frame is not None else 1006
    reason = frame.reason if frame is not None else "connection lost"
    return ConnectionClosed(code=code, reason=reason)


class WebSocketTransport:
    """A ``websockets`` connection (client or server side) as a Transport."""

    def __init__(self, ws: Connection):
        self.ws = ws

    def __repr__(self) -> str:
        return f"<WebSocketTransport {self.ws.remote_address} {'closed' if self.closed else 'open'}>"

    @property
    def closed(self) -> bool:
        return self.ws.state in (State.CLOSING, State.CLOSED)

    async def send(self, frame: bytes) -> None:
        try:
            await self.ws.send(bytes(frame) if not isinstance(frame, bytes) else frame)
        except WsConnectionClosed as exc:
            raise _closed(exc) from exc
        except (WebSocketException, OSError) as exc:
            raise TransportError(f"send failed: {exc}") from exc

    async def recv(self) -> bytes:
        try:
            data = await self.ws.recv(decode=False)
        except WsConnectionClosed as exc:
            raise _closed(exc) from exc
        except (WebSocketException, OSError) as exc:
            raise TransportError(f"recv failed: {exc}") from exc
        return data if isinstance(data, bytes) else bytes(data)

    async def close(self, code: int = CLOSE_NORMAL, reason: str = "") -> None:
        with contextlib.suppress(WebSocketException, OSError):  # a broken connection is closed too
            await self.ws.close(code, reason)

    async def wait_closed(self) -> None:
        await self.ws.wait_closed()


async def connect_websocket(
    url: str,
    *,
    max_size: int | None = DEFAULT_MAX_SIZE,
    open_timeout: float | None = 10.0,
    close_timeout: float | None = 5.0,
    headers: Mapping[str, str] | None = None,
    compression: str | None = None,
) -> WebSocketTransport:
    """Open a websocket client connection to ``url`` (``ws://`` or ``wss://``).

    ``max_size`` bounds received frames; no websocket-level pings (the native protocol has its
    own heartbeat); no compression by default (CRDT updates are small and already compact).
    Raises :class:`TransportError` when the connection cannot be opened."""
    try:
        ws = await connect(
            url,
            max_size=max_size,
            open_timeout=open_timeout,
            close_timeout=close_timeout,
            ping_interval=None,
            compression=compression,
            additional_headers=dict(headers) if headers else None,
            proxy=None,
        )
    except (TimeoutError, WebSocketException, OSError, ValueError) as exc:
        raise TransportError(f"cannot connect to {url}: {exc}") from exc
    return WebSocketTransport(ws)
