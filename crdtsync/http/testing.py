"""A real HTTP server for tests and examples: an ASGI app served by uvicorn on loopback.

``uvicorn`` is a development dependency (``crdtsync[dev]``), imported only when called::

    async with serve_asgi(app) as base_url:        # "http://127.0.0.1:<free port>"
        api = HttpClient(base_url)

The listening socket is bound before the server starts, so the URL is known at once and
requests made before uvicorn accepts simply queue: nobody waits for a "started" flag. Leaving
the block stops the server (open connections are closed, not waited for).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any


@contextlib.asynccontextmanager
async def serve_asgi(app: Any, *, host: str = "127.0.0.1") -> AsyncIterator[str]:
    """Serve ``app`` on a free port of ``host``; yields the base URL."""
    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:  # leave the process's signal handlers alone
            yield

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    sock.listen(128)
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, lifespan="off", log_config=None, log_level="warning", access_log=False)
    server = Server(config)
    task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        server.force_exit = True
        await task
        sock.close()
