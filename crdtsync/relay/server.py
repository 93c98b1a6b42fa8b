""":class:`Relay`: the relay service. Both protocols and the HTTP routes share one port.

Routes::

    GET /healthz          200 "ok" (503 while shutting down)
    GET /metrics          Prometheus text format (this relay's own registry)
    ws  /v1               native protocol (RelayConfig.native_path)
    ws  /<room>?token=..  y-websocket protocol; the room is the URL-decoded path

Use it as ``async with Relay(config, store) as relay: ...`` (``relay.port`` is the bound port,
useful with port 0), or ``await relay.serve_forever()``, which returns after SIGTERM/SIGINT
once every room has been flushed. :meth:`Relay.stop` does the same on demand: stop accepting,
close connections (1001), flush every room, close the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import urllib.parse
from http import HTTPStatus
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from ..clock import Clock, SystemClock
from ..errors import AuthError
from ..protocol.close_codes import CloseCode
from ..storage.base import DocumentStore
from ..storage.memory import MemoryStore
from .auth import Access, authenticate
from .config import RelayConfig, is_loopback
from .context import RelayContext
from .metrics import RelayMetrics
from .native_endpoint import NativeSession
from .peer import Peer
from .ratelimit import Throttle
from .rooms import RoomManager
from .yws import YjsSession

log = logging.getLogger("crdtsync.relay")


def _response(status: HTTPStatus, body: bytes, content_type: str = "text/plain; charset=utf-8") -> Response:
    headers = Headers([("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return Response(status.value, status.phrase, headers, body)


def split_path(path: str) -> tuple[str, dict[str, str]]:
    """``"/room%20a?token=x"`` -> ``("/room a", {"token": "x"})``. A parameter given more than
    once has the value :data:`REPEATED` (the caller refuses it rather than guess)."""
    parsed = urllib.parse.urlsplit(path)
    params: dict[str, str] = {}
    for key, value in urllib.parse.parse_qsl(parsed.query, keep_blank_values=True):
        params[key] = REPEATED if key in params else value
    return urllib.parse.unquote(parsed.path), params


REPEATED = "\x00repeated"  # a query parameter given more than once (never a valid value)


class Relay:
    """The relay service around a :class:`~crdtsync.storage.DocumentStore`.

    The relay owns the store: :meth:`stop` closes it.
    """

    def __init__(
        self,
        config: RelayConfig | None = None,
        store: DocumentStore | None = None,
        *,
        clock: Clock | None = None,
    ):
        self.config = config or RelayConfig()
        self.store: DocumentStore = store if store is not None else MemoryStore()
        self.clock: Clock = clock or SystemClock()
        self.metrics = RelayMetrics()
        self.rooms = RoomManager(store=self.store, config=self.config, clock=self.clock, metrics=self.metrics)
        self.ctx = RelayContext(self.config, self.rooms, self.metrics, self.clock)
        self.peers: dict[int, Peer] = {}
        self._server: Server | None = None
        self._stopping = False
        self._stopped = asyncio.Event()
        size = getattr(self.store, "total_size", None)
        self.metrics.bind_store(
            (lambda: float(size())) if callable(size) else (lambda: 0.0),
            lambda: float(getattr(self.store, "compactions", 0)),
        )
        self.metrics.bind_queues(lambda: [p.queued for p in self.peers.values()])

    # ---------------------------------------------------------------- lifecycle

    @property
    def port(self) -> int:
        """The bound port (after :meth:`start`)."""
        if self._server is None:
            raise RuntimeError("relay not started")
        for sock in self._server.sockets:
            return int(sock.getsockname()[1])
        raise RuntimeError("relay has no socket")

    @property
    def url(self) -> str:
        host = self.config.host if ":" not in self.config.host else f"[{self.config.host}]"
        return f"ws://{host}:{self.port}"

    async def start(self) -> None:
        """Bind and start serving. Raises AuthError for an anonymous non-loopback bind."""
        cfg = self.config
        cfg.check_bind()
        self._server = await serve(
            self._handler,
            cfg.host,
            cfg.port,
            process_request=self._process_request,
            max_size=cfg.max_message_size,
            max_queue=64,
            write_limit=cfg.write_buffer,
            compression=None,
            ping_interval=cfg.ping_interval,
            ping_timeout=cfg.ping_interval,
            logger=logging.getLogger("crdtsync.relay.websockets"),
        )
        fields: dict[str, Any] = {
            "url": self.url,
            "native": f"{self.url}{cfg.native_path}",
            "yjs": f"{self.url}/<room>",
            "store": type(self.store).__name__,
            "auth": "token" if cfg.secret else "anonymous",
        }
        log.info("relay listening", extra={"fields": fields})
        if cfg.secret is None:
            where = "loopback only" if is_loopback(cfg.host) else "NON-LOOPBACK (--allow-anonymous)"
            log.warning(
                "no secret set: anonymous peers get read-write access to every document",
                extra={"fields": {"bind": cfg.host, "scope": where}},
            )

    async def stop(self) -> None:
        """Stop accepting, close connections (1001), flush every room, close the store."""
        if self._stopping:
            await self._stopped.wait()
            return
        self._stopping = True
        try:
            if self._server is not None:
                self._server.close(close_connections=True)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._server.wait_closed(), self.config.shutdown_timeout)
            await asyncio.wait_for(self.rooms.close(), self.config.shutdown_timeout)
            await self.store.close()
            log.info("relay stopped", extra={"fields": {}})
        finally:
            self._stopped.set()

    async def __aenter__(self) -> Relay:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def serve_forever(self, *, handle_signals: bool = True) -> None:
        """Start, run until SIGTERM/SIGINT (or :meth:`stop`), flush and return."""
        await self.start()
        loop = asyncio.get_running_loop()
        stop_requested = asyncio.Event()
        installed = []
        if handle_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(sig, stop_requested.set)
                    installed.append(sig)
        waiter = asyncio.create_task(stop_requested.wait())
        stopped = asyncio.create_task(self._stopped.wait())
        await asyncio.wait({waiter, stopped}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        stopped.cancel()
        for sig in installed:
            loop.remove_signal_handler(sig)
        if stop_requested.is_set():
            log.info("signal received: flushing rooms", extra={"fields": {"rooms": len(self.rooms.rooms)}})
        await self.stop()

    # ---------------------------------------------------------------- HTTP + routing

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path, params = split_path(request.path)
        if path == "/healthz":
            if self._stopping:
                return _response(HTTPStatus.SERVICE_UNAVAILABLE, b"stopping\n")
            return _response(HTTPStatus.OK, b"ok\n")
        if path == "/metrics":
            return _response(HTTPStatus.OK, self.metrics.render(), "text/plain; version=0.0.4; charset=utf-8")
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return _response(HTTPStatus.NOT_FOUND, b"not found\n")
        if self._stopping:
            return _response(HTTPStatus.SERVICE_UNAVAILABLE, b"shutting down\n")
        if len(self.peers) >= self.config.max_connections:
            self.metrics.dropped.labels("max_connections").inc()
            return _response(HTTPStatus.SERVICE_UNAVAILABLE, b"too many connections\n")
        if path == self.config.native_path:
            return None  # authenticated by the Hello
        doc_id = path[1:]
        if not doc_id or len(doc_id.encode("utf-8", "replace")) > 1024 or "\x00" in doc_id:
            return _response(HTTPStatus.BAD_REQUEST, b"bad room name\n")
        if params.get("token") == REPEATED:  # which one was meant? refuse rather than guess
            return _response(HTTPStatus.BAD_REQUEST, b"the token parameter is given more than once\n")
        try:
            claims = authenticate(self.config.secret, params.get("token"), now=self.clock.now())
        except AuthError as exc:
            return _response(HTTPStatus.UNAUTHORIZED, f"{exc}\n".encode())
        if claims.access(doc_id) is Access.NONE:
            return _response(HTTPStatus.FORBIDDEN, b"the token grants no access to this room\n")
        return None

    async def _handler(self, ws: ServerConnection) -> None:
        path, params = split_path(ws.request.path if ws.request is not None else "/")
        cfg = self.config
        native = path == cfg.native_path
        protocol = "native" if native else "yjs"
        if native:
            claims = authenticate(None, None, now=0)  # placeholder until the Hello
        else:
            claims = authenticate(cfg.secret, params.get("token"), now=self.clock.now())
        peer = Peer(
            ws,
            protocol=protocol,
            claims=claims,
            max_queue=cfg.max_queue,
            throttle=Throttle(cfg.rate, cfg.burst, self.clock.now(), max_throttle=cfg.max_throttle),
            metrics=self.metrics,
            write_buffer=cfg.write_buffer,
        )
        self.peers[peer.id] = peer
        self.metrics.connections.labels(protocol).inc()
        self.metrics.connections_total.labels(protocol).inc()
        peer.start()
        try:
            if native:
                await NativeSession(self.ctx, peer).run(ws)
            else:
                doc_id = path[1:]
                await YjsSession(self.ctx, peer, doc_id, claims.access(doc_id)).run(ws)
        except Exception:
            log.exception("connection handler failed", extra={"fields": {"peer": peer.id}})
        finally:
            del self.peers[peer.id]
            self.metrics.connections.labels(protocol).dec()
            await peer.stop()
            if self._stopping:
                with contextlib.suppress(Exception):
                    await ws.close(CloseCode.GOING_AWAY, "relay shutting down")
