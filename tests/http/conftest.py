"""A programmable ASGI app served by uvicorn on loopback, for the crdtsync.http tests.

Each test registers handlers with ``app.route(method, "/todos/{id}")``; a handler gets a
:class:`Req` and returns a :class:`Resp` (sync or async). ``app.log`` lists every request the
server received, and ``app.seen(n)`` waits (with a timeout, never by sleeping) until it has.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import pytest

from crdtsync import FakeClock, QueryClient, QueryState
from crdtsync.http import HttpClient
from crdtsync.http.testing import serve_asgi

TIMEOUT = 10.0


@dataclass
class Req:
    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    body: bytes
    receive: Callable[[], Awaitable[dict[str, Any]]]
    path_params: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Resp:
    status: int = 200
    body: Any = None  # JSON, or bytes as they are
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Req], "Resp | Awaitable[Resp]"]


class App:
    def __init__(self) -> None:
        self.routes: list[tuple[str, list[str], Handler]] = []
        self.log: list[Req] = []
        self._arrived = asyncio.Event()

    def route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.routes.append((method, pattern.strip("/").split("/"), handler))
            return handler

        return register

    def requests(self, method: str, path: str) -> list[Req]:
        return [r for r in self.log if r.method == method and r.path == path]

    async def seen(self, count: int, method: str | None = None, path: str | None = None) -> list[Req]:
        """Wait until at least ``count`` matching requests arrived; return them."""

        async def wait() -> list[Req]:
            while True:
                found = [r for r in self.log if (method is None or r.method == method)
                         and (path is None or r.path == path)]
                if len(found) >= count:
                    return found
                self._arrived.clear()
                await self._arrived.wait()

        return await asyncio.wait_for(wait(), TIMEOUT)

    def _match(self, method: str, raw_path: str) -> tuple[Handler, dict[str, str]] | None:
        parts = [unquote(p) for p in raw_path.strip("/").split("/")]
        for m, pattern, handler in self.routes:
            if m != method or len(pattern) != len(parts):
                continue
            params: dict[str, str] = {}
            for want, got in zip(pattern, parts, strict=True):
                if want.startswith("{") and want.endswith("}"):
                    params[want[1:-1]] = got
                elif want != got:
                    break
            else:
                return handler, params
        return None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        query = scope["query_string"].decode()
        params = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        req = Req(scope["method"], scope["path"], params, headers, body, receive)
        self.log.append(req)
        self._arrived.set()
        found = self._match(req.method, scope["raw_path"].decode())
        if found is None:
            resp = Resp(404, {"error": "not found"})
        else:
            handler, req.path_params = found
            result = handler(req)
            resp = await result if inspect.isawaitable(result) else result
        payload = resp.body if isinstance(resp.body, bytes) else (
            b"" if resp.body is None else json.dumps(resp.body).encode())
        out = [(k.lower().encode(), v.encode()) for k, v in resp.headers.items()]
        if payload and not isinstance(resp.body, bytes):
            out.append((b"content-type", b"application/json"))
        await send({"type": "http.response.start", "status": resp.status, "headers": out})
        await send({"type": "http.response.body", "body": payload})


@pytest.fixture
def app() -> App:
    return App()


@pytest.fixture
async def base_url(app: App) -> AsyncIterator[str]:
    async with serve_asgi(app) as url:
        yield url


@pytest.fixture
def clock(fake_clock: FakeClock) -> FakeClock:
    """The crdtsync plugin's ``fake_clock``, shared by the query client and the HTTP client."""
    return fake_clock


@pytest.fixture
async def api(base_url: str, clock: FakeClock) -> AsyncIterator[HttpClient]:
    async with HttpClient(base_url, timeout=TIMEOUT, clock=clock) as http_client:
        yield http_client


@pytest.fixture
async def client(clock: FakeClock) -> AsyncIterator[QueryClient]:
    async with QueryClient(clock=clock, rng=random.Random(7)) as query_client:  # mounted
        yield query_client


async def state_where(client: QueryClient, key: tuple[Any, ...],
                      predicate: Callable[[QueryState], bool]) -> QueryState:
    """Wait (on cache events, with a timeout) until the query's state satisfies ``predicate``."""
    reached = asyncio.Event()

    def check(_event: object = None) -> None:
        st = client.get_query_state(key)
        if st is not None and predicate(st):
            reached.set()

    unsubscribe = client.query_cache.subscribe(check)
    try:
        check()
        await asyncio.wait_for(reached.wait(), TIMEOUT)
    finally:
        unsubscribe()
    st = client.get_query_state(key)
    assert st is not None
    return st
