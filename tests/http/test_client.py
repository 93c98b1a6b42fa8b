"""HttpClient against a real server: query and mutation functions, headers, hooks, error
wrapping and cancellation."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from crdtsync import ClientError, QueryClient
from crdtsync.errors import MutationCancelledError, QueryCancelledError, TransportError
from crdtsync.http import HttpClient, HTTPClientError, HTTPTransportError
from crdtsync.http.testing import serve_asgi

from .conftest import TIMEOUT, App, Req, Resp


async def test_query_fn_fills_the_path_from_the_key(app: App, api: HttpClient, client: QueryClient) -> None:
    app.route("GET", "/todos/{id}")(lambda r: Resp(200, {"id": int(r.path_params["id"]), "title": "milk"}))

    todo = await client.fetch_query(("todos", 5), api.query("/todos/{1}"))

    assert todo == {"id": 5, "title": "milk"}
    assert client.get_query_data(("todos", 5)) == {"id": 5, "title": "milk"}
    assert [r.path for r in app.log] == ["/todos/5"]


async def test_without_a_path_the_key_is_the_url(app: App, api: HttpClient, client: QueryClient) -> None:
    app.route("GET", "/todos")(lambda r: Resp(200, [{"status": r.params.get("status")}]))

    data = await client.fetch_query(("todos", {"status": "done"}), api.query())

    assert data == [{"status": "done"}]
    assert app.log[0].params == {"status": "done"}


async def test_one_default_query_fn_serves_a_family(app: App, api: HttpClient, client: QueryClient) -> None:
    app.route("GET", "/todos/{id}")(lambda r: Resp(200, {"id": int(r.path_params["id"])}))
    client.set_query_defaults(("todos",), query_fn=api.query())

    assert [await client.fetch_query(("todos", i)) for i in (1, 2)] == [{"id": 1}, {"id": 2}]


async def test_path_segments_are_encoded(app: App, api: HttpClient, client: QueryClient) -> None:
    app.route("GET", "/files/{name}")(lambda r: Resp(200, {"name": r.path_params["name"]}))

    await client.fetch_query(("files", "a b/c"), api.query("/files/{1}"))

    assert app.log[0].path_params == {"name": "a b/c"}  # one segment on the wire


async def test_headers_and_hooks_run_on_every_request(app: App, base_url: str, client: QueryClient) -> None:
    app.route("GET", "/me")(lambda r: Resp(200, {"ok": True}, headers={"x-server": "1"}))
    sent: list[str] = []
    answered: list[int] = []

    async def stamp(request: httpx.Request) -> None:
        request.headers["x-request-id"] = f"r{len(sent)}"
        sent.append(str(request.url))

    async with HttpClient(base_url, headers={"x-app": "demo"}, before_request=[stamp],
                          after_response=[lambda response: answered.append(response.status_code)]) as api:
        await client.fetch_query(("me",), api.query("/me"))
        await api.request("GET", "/me")

    assert [r.headers["x-app"] for r in app.log] == ["demo", "demo"]
    assert [r.headers["x-request-id"] for r in app.log] == ["r0", "r1"]
    assert answered == [200, 200]
    assert sent == [f"{base_url}/me", f"{base_url}/me"]


async def test_a_4xx_fails_the_query_without_a_retry(app: App, api: HttpClient, client: QueryClient) -> None:
    app.route("GET", "/todos/{id}")(lambda r: Resp(404, {"error": "no such todo"}))

    with pytest.raises(HTTPClientError) as info:
        await client.fetch_query(("todos", 9), api.query("/todos/{1}"), retry=3)

    assert isinstance(info.value, ClientError)
    assert info.value.status == 404
    assert info.value.json() == {"error": "no such todo"}
    assert len(app.log) == 1
    state = client.get_query_state(("todos", 9))
    assert state is not None and state.status == "error" and state.error is info.value


async def test_mutation_fn_sends_variables_and_idempotency_key(app: App, api: HttpClient,
                                                              client: QueryClient) -> None:
    app.route("POST", "/todos")(lambda r: Resp(201, {**r.json(), "id": 7}))

    data = await client.mutate_async({"title": "bread"}, mutation_fn=api.mutation("POST", "/todos"))

    assert data == {"title": "bread", "id": 7}
    assert app.log[0].json() == {"title": "bread"}
    assert app.log[0].headers["idempotency-key"]
    assert "if-match" not in app.log[0].headers


async def test_delete_sends_no_body(app: App, api: HttpClient, client: QueryClient) -> None:
    app.route("DELETE", "/todos/{id}")(lambda r: Resp(204))

    data = await client.mutate_async({"id": 3}, mutation_fn=api.mutation("DELETE", "/todos/{id}"))

    assert data is None
    assert app.log[0].path == "/todos/3" and app.log[0].body == b""


async def test_no_server_is_a_transport_error(client: QueryClient) -> None:
    async with serve_asgi(App()) as url:
        pass  # the port is closed again
    async with HttpClient(url, timeout=TIMEOUT) as api:
        with pytest.raises(HTTPTransportError) as info:
            await client.fetch_query(("todos",), api.query("/todos"), retry=False)

    assert isinstance(info.value, TransportError)
    assert isinstance(info.value.__cause__, httpx.TransportError)


def slow_route(app: App, method: str, path: str) -> tuple[asyncio.Event, asyncio.Event]:
    """A route that answers only after the client has gone: (started, disconnected) events."""
    started = asyncio.Event()
    disconnected = asyncio.Event()

    async def slow(req: Req) -> Resp:
        started.set()
        message = await req.receive()  # the next message is the disconnect
        if message["type"] == "http.disconnect":
            disconnected.set()
        return Resp(200, {"late": True})

    app.route(method, path)(slow)
    return started, disconnected


async def test_cancelling_the_query_cancels_the_request(app: App, api: HttpClient, client: QueryClient) -> None:
    started, disconnected = slow_route(app, "GET", "/slow")
    fetch = asyncio.ensure_future(client.fetch_query(("slow",), api.query("/slow")))
    await asyncio.wait_for(started.wait(), TIMEOUT)

    await client.cancel_queries(("slow",))

    await asyncio.wait_for(disconnected.wait(), TIMEOUT)  # the server saw the connection go
    with pytest.raises(QueryCancelledError):
        await fetch
    assert client.get_query_data(("slow",)) is None


async def test_cancelling_the_mutation_cancels_the_request(app: App, api: HttpClient, client: QueryClient) -> None:
    started, disconnected = slow_route(app, "POST", "/slow")
    mutation = client.mutate({"x": 1}, mutation_fn=api.mutation("POST", "/slow"))
    await asyncio.wait_for(started.wait(), TIMEOUT)

    mutation.cancel()

    await asyncio.wait_for(disconnected.wait(), TIMEOUT)
    with pytest.raises(MutationCancelledError):
        await mutation.result()
