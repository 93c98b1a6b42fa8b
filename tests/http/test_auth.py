"""Token auth against a real server: one refresh for many 401s, requests that wait for it,
and a failed refresh that pauses queries instead of looping."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from crdtsync import FakeClock, QueryClient
from crdtsync.errors import AuthError
from crdtsync.http import AuthRefreshError, HttpClient, HTTPClientError, TokenAuth

from .conftest import TIMEOUT, App, Req, Resp, state_where

N = 20


class TokenServer:
    """Accepts only ``valid``; ``POST /token`` rotates to the next token."""

    def __init__(self, app: App, valid: str = "t1") -> None:
        self.valid = valid
        self.rejected = 0
        self.all_rejected = asyncio.Event()
        self.expect_rejections = N
        self.refresh_started = asyncio.Event()
        self.refresh_allowed = asyncio.Event()  # a test may clear it to hold the refresh
        self.refresh_allowed.set()
        app.route("GET", "/todos/{id}")(self.todo)
        app.route("POST", "/token")(self.token)

    def todo(self, req: Req) -> Resp:
        if req.headers.get("authorization") != f"Bearer {self.valid}":
            self.rejected += 1
            if self.rejected >= self.expect_rejections:
                self.all_rejected.set()
            return Resp(401, {"error": "token expired"})
        return Resp(200, {"id": int(req.path_params["id"])})

    def token(self, req: Req) -> Resp:
        assert "authorization" not in req.headers  # the refresh call itself sends no token
        self.valid = "t2"
        return Resp(200, {"token": "t2"})


@pytest.fixture
async def authed(app: App, base_url: str) -> AsyncIterator[tuple[HttpClient, TokenServer]]:
    server = TokenServer(app)

    async def refresh() -> str:
        # Hold the refresh until every request got its 401, so they all really race for it.
        server.refresh_started.set()
        await asyncio.wait_for(server.all_rejected.wait(), TIMEOUT)
        await asyncio.wait_for(server.refresh_allowed.wait(), TIMEOUT)
        response = await api.request("POST", "/token", auth=False)
        return str(response.json()["token"])

    auth = TokenAuth("t0", refresh=refresh)
    async with HttpClient(base_url, auth=auth, timeout=TIMEOUT) as api:
        yield api, server


async def test_twenty_401s_make_one_refresh_and_all_succeed(app: App, authed: tuple[HttpClient, TokenServer],
                                                           client: QueryClient) -> None:
    api, _ = authed
    todo = api.query("/todos/{1}")

    results = await asyncio.gather(*(client.fetch_query(("todos", i), todo) for i in range(N)))

    assert results == [{"id": i} for i in range(N)]
    assert len(app.requests("POST", "/token")) == 1
    assert api.auth is not None and api.auth.refresh_count == 1 and api.auth.token == "t2"
    for i in range(N):  # each sent twice: once refused, once with the new token
        tried = app.requests("GET", f"/todos/{i}")
        assert [r.headers["authorization"] for r in tried] == ["Bearer t0", "Bearer t2"]


async def test_a_request_started_during_the_refresh_waits_for_it(app: App, authed: tuple[HttpClient, TokenServer],
                                                                client: QueryClient, clock: FakeClock) -> None:
    api, server = authed
    server.expect_rejections = 1
    server.refresh_allowed.clear()
    first = asyncio.ensure_future(client.fetch_query(("todos", 1), api.query("/todos/{1}")))
    await asyncio.wait_for(server.refresh_started.wait(), TIMEOUT)  # started, and held

    late = asyncio.ensure_future(client.fetch_query(("todos", 2), api.query("/todos/{1}")))
    await clock.settle()  # loop turns, no time: the late request reaches the auth and waits
    server.refresh_allowed.set()

    assert await asyncio.wait_for(late, TIMEOUT) == {"id": 2} and await first == {"id": 1}
    assert [r.headers["authorization"] for r in app.requests("GET", "/todos/2")] == ["Bearer t2"]
    assert len(app.requests("POST", "/token")) == 1


async def test_a_token_refused_again_is_a_client_error_not_a_second_refresh(app: App, base_url: str,
                                                                            client: QueryClient) -> None:
    app.route("GET", "/admin")(lambda r: Resp(401, {"error": "never"}))
    refreshes: list[str] = []

    async def refresh() -> str:
        refreshes.append("r")
        return f"t{len(refreshes)}"

    async with HttpClient(base_url, auth=TokenAuth("t0", refresh=refresh)) as api:
        with pytest.raises(HTTPClientError) as info:
            await client.fetch_query(("admin",), api.query("/admin"), retry=3)

    assert info.value.status == 401
    assert refreshes == ["r"]
    assert [r.headers["authorization"] for r in app.log] == ["Bearer t0", "Bearer t1"]


async def failing_refresh() -> str:
    raise RuntimeError("refresh token revoked")


async def test_failed_refresh_raises_a_typed_error_and_is_not_retried_without_a_manager(
        app: App, base_url: str, client: QueryClient) -> None:
    TokenServer(app)
    async with HttpClient(base_url, auth=TokenAuth("t0", refresh=failing_refresh)) as api:
        with pytest.raises(AuthRefreshError) as info:
            await client.fetch_query(("todos", 1), api.query("/todos/{1}"), retry=3)
        assert isinstance(info.value, AuthError)
        assert isinstance(info.value.__cause__, RuntimeError)
        assert len(app.log) == 1  # no retry after the failed refresh

        with pytest.raises(AuthRefreshError):  # signed out: fails at once, no request, no refresh
            await client.fetch_query(("todos", 2), api.query("/todos/{1}"), retry=3)
        assert len(app.log) == 1


@pytest.fixture
async def signed_out(app: App, base_url: str,
                     client: QueryClient) -> AsyncIterator[tuple[TokenServer, TokenAuth, HttpClient]]:
    """An API client whose token refresh fails, with ``client``'s online manager to pause."""
    server = TokenServer(app)
    server.expect_rejections = 1
    auth = TokenAuth("t0", refresh=failing_refresh)
    async with HttpClient(base_url, auth=auth, online_manager=client.online_manager) as api:
        yield server, auth, api


async def paused_fetch(client: QueryClient, clock: FakeClock, api: HttpClient, retry: int) -> asyncio.Future[Any]:
    """Fetch ("todos", 1) into the failed refresh; return once the retry waits, paused."""
    fetch = asyncio.ensure_future(client.fetch_query(("todos", 1), api.query("/todos/{1}"), retry=retry))
    failed = await state_where(client, ("todos", 1), lambda s: s.fetch_failure_count == 1)
    assert isinstance(failed.fetch_failure_reason, AuthRefreshError)
    assert not client.online_manager.is_online()
    await clock.advance(60)  # past the retry delay: the query now waits for the network
    paused = await state_where(client, ("todos", 1), lambda s: s.fetch_status == "paused")
    assert paused.status == "pending" and not fetch.done()
    return fetch


async def test_failed_refresh_pauses_queries_until_set_token(
        app: App, signed_out: tuple[TokenServer, TokenAuth, HttpClient], client: QueryClient,
        clock: FakeClock) -> None:
    server, auth, api = signed_out
    fetch = await paused_fetch(client, clock, api, retry=3)
    later = asyncio.ensure_future(client.fetch_query(("todos", 2), api.query("/todos/{1}")))  # pauses at once
    await state_where(client, ("todos", 2), lambda s: s.fetch_status == "paused")
    await clock.advance(600)
    assert len(app.log) == 1 and auth.refresh_count == 1  # no loop while paused

    server.valid = "t2"
    auth.set_token("t2")  # the user signed in again

    assert await asyncio.wait_for(fetch, TIMEOUT) == {"id": 1}
    assert await asyncio.wait_for(later, TIMEOUT) == {"id": 2}
    assert client.online_manager.is_online()
    assert sorted(r.headers["authorization"] for r in app.log) == ["Bearer t0", "Bearer t2", "Bearer t2"]


async def test_a_paused_query_woken_by_someone_else_pauses_again(
        app: App, signed_out: tuple[TokenServer, TokenAuth, HttpClient], client: QueryClient,
        clock: FakeClock) -> None:
    server, auth, api = signed_out
    fetch = await paused_fetch(client, clock, api, retry=5)

    client.online_manager.set_online(True)  # say, a connection monitor saw the network return

    await state_where(client, ("todos", 1), lambda s: s.fetch_failure_count == 2)
    assert not client.online_manager.is_online()  # paused again, without a request or a refresh
    await clock.advance(60)
    await state_where(client, ("todos", 1), lambda s: s.fetch_status == "paused")
    assert len(app.log) == 1 and auth.refresh_count == 1

    server.valid = "t2"
    auth.set_token("t2")
    assert await asyncio.wait_for(fetch, TIMEOUT) == {"id": 1}


async def test_a_mutation_made_while_signed_out_waits_and_is_sent_after_set_token(
        app: App, signed_out: tuple[TokenServer, TokenAuth, HttpClient], client: QueryClient) -> None:
    _, auth, api = signed_out
    app.route("POST", "/todos")(lambda r: Resp(201, {"id": 9}) if r.headers.get("authorization") == "Bearer t2"
                                else Resp(401, {"error": "token expired"}))
    with pytest.raises(AuthRefreshError):
        await client.fetch_query(("todos", 1), api.query("/todos/{1}"))

    mutation = client.mutate({"title": "x"}, mutation_fn=api.mutation("POST", "/todos"))
    assert mutation.state.is_paused and len(app.log) == 1

    auth.set_token("t2")

    assert await asyncio.wait_for(mutation.result(), TIMEOUT) == {"id": 9}
    assert [r.headers["authorization"] for r in app.requests("POST", "/todos")] == ["Bearer t2"]


async def test_header_and_scheme_are_configurable(app: App, base_url: str, client: QueryClient) -> None:
    app.route("GET", "/me")(lambda r: Resp(200, {"key": r.headers.get("x-api-key")}))
    async with HttpClient(base_url, auth=TokenAuth("k1", header="X-Api-Key", scheme="")) as api:
        assert await client.fetch_query(("me",), api.query("/me")) == {"key": "k1"}
        await api.request("GET", "/me", auth=False)
    assert "authorization" not in app.log[0].headers
    assert "x-api-key" not in app.log[1].headers  # auth=False sends no token
