"""Status classification and Retry-After: the pure rules, then retries against a real server
with the client's FakeClock (time moves only when the test says so)."""

from __future__ import annotations

import asyncio
import email.utils

import pytest

from crdtsync import ClientError, FakeClock, QueryClient
from crdtsync.errors import VersionConflictError
from crdtsync.http import (
    HttpClient,
    HTTPClientError,
    HTTPConflictError,
    HTTPRetryableError,
    is_retryable_status,
    parse_retry_after,
    status_error,
)
from crdtsync.mutations.events import MutationUpdated

from .conftest import TIMEOUT, App, Req, Resp, state_where

NOW = 1_000_000.0


def http_date(at: float) -> str:
    return email.utils.formatdate(at, usegmt=True)


@pytest.mark.parametrize(("status", "retryable"), [(400, False), (401, False), (404, False), (408, True),
                                                   (422, False), (429, True), (500, True), (503, True)])
def test_retryable_statuses(status: int, retryable: bool) -> None:
    assert is_retryable_status(status) is retryable
    err = status_error(method="GET", url="/x", status=status, headers={}, body=b"", now=NOW, max_retry_after=60)
    assert isinstance(err, HTTPRetryableError) is retryable
    assert isinstance(err, ClientError) is not retryable
    assert err.status == status


@pytest.mark.parametrize(("method", "conflict"), [("PUT", True), ("PATCH", True), ("DELETE", True),
                                                  ("POST", True), ("GET", False)])
@pytest.mark.parametrize("status", [409, 412])
def test_conflicts_only_on_writes(method: str, conflict: bool, status: int) -> None:
    err = status_error(method=method, url="/x", status=status, headers={}, body=b"", now=NOW, max_retry_after=60)
    assert isinstance(err, HTTPConflictError) is conflict
    assert isinstance(err, VersionConflictError) is conflict
    assert isinstance(err, HTTPClientError)  # never retried either way


@pytest.mark.parametrize(("value", "seconds"), [
    ("7", 7.0), (" 0 ", 0.0), ("-3", 0.0), ("1.5", 1.5), ("9999", 60.0),
    (http_date(NOW + 12), 12.0), (http_date(NOW - 30), 0.0), (http_date(NOW + 3600), 60.0),
    (None, None), ("soon", None), ("nan", None), ("", None),
])
def test_parse_retry_after(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value, now=NOW, cap=60) == seconds


def test_retry_after_header_is_read_case_insensitively() -> None:
    err = status_error(method="GET", url="/x", status=429, headers={"Retry-After": "5"}, body=b"",
                       now=NOW, max_retry_after=60)
    assert isinstance(err, HTTPRetryableError) and err.retry_after == 5.0


async def test_retries_wait_for_retry_after(app: App, api: HttpClient, client: QueryClient,
                                            clock: FakeClock) -> None:
    arrived_at: list[float] = []
    answers = [Resp(503, {"error": "busy"}, {"Retry-After": "7"}),
               Resp(429, {"error": "slow down"}, {"Retry-After": http_date(clock.now() + 19)}),
               Resp(200, {"ok": True})]

    def flaky(req: Req) -> Resp:
        arrived_at.append(clock.now())
        return answers[len(arrived_at) - 1]

    app.route("GET", "/flaky")(flaky)
    start = clock.now()
    fetch = asyncio.ensure_future(client.fetch_query(("flaky",), api.query("/flaky"), retry=3))

    first = await state_where(client, ("flaky",), lambda s: s.fetch_failure_count == 1)
    assert isinstance(first.fetch_failure_reason, HTTPRetryableError)
    assert first.fetch_failure_reason.retry_after == 7.0
    assert clock.next_timer_at() == start + 7  # the backoff (about 1 s) was raised to 7
    await clock.advance(7)
    await app.seen(2)
    await state_where(client, ("flaky",), lambda s: s.fetch_failure_count == 2)
    assert clock.next_timer_at() == start + 19  # the date said 19 s after the start
    await clock.advance(12)

    assert await asyncio.wait_for(fetch, TIMEOUT) == {"ok": True}
    assert arrived_at == [start, start + 7, start + 19]


async def test_a_short_retry_delay_is_raised_to_retry_after(app: App, api: HttpClient, client: QueryClient,
                                                            clock: FakeClock) -> None:
    app.route("GET", "/busy")(lambda r: Resp(503, None, {"Retry-After": "30"}))
    fetch = asyncio.ensure_future(client.fetch_query(("busy",), api.query("/busy"), retry=1, retry_delay=0.5))

    await state_where(client, ("busy",), lambda s: s.fetch_failure_count == 1)
    assert clock.next_timer_at() == clock.now() + 30
    await clock.advance(30)

    with pytest.raises(HTTPRetryableError):
        await asyncio.wait_for(fetch, TIMEOUT)
    assert len(app.log) == 2


async def test_retry_after_is_capped(app: App, base_url: str, client: QueryClient, clock: FakeClock) -> None:
    app.route("GET", "/later")(lambda r: Resp(503, None, {"Retry-After": "86400"}))
    async with HttpClient(base_url, max_retry_after=45) as api:
        fetch = asyncio.ensure_future(client.fetch_query(("later",), api.query("/later"), retry=1))
        failed = await state_where(client, ("later",), lambda s: s.fetch_failure_count == 1)
        assert isinstance(failed.fetch_failure_reason, HTTPRetryableError)
        assert failed.fetch_failure_reason.retry_after == 45
        await clock.advance(45)
        with pytest.raises(HTTPRetryableError):
            await asyncio.wait_for(fetch, TIMEOUT)


async def test_mutations_retry_after_5xx_but_not_after_4xx(app: App, api: HttpClient, client: QueryClient,
                                                           clock: FakeClock) -> None:
    calls: list[str] = []

    def create(req: Req) -> Resp:
        calls.append(req.headers["idempotency-key"])
        return Resp(502, None, {"Retry-After": "3"}) if len(calls) == 1 else Resp(201, {"id": 1})

    app.route("POST", "/todos")(create)
    app.route("POST", "/bad")(lambda r: Resp(422, {"error": "title missing"}))

    failed = asyncio.Event()
    client.mutation_cache.subscribe(lambda e: failed.set() if isinstance(e, MutationUpdated)
                                    and e.mutation.state.failure_count == 1 else None)
    mutation = client.mutate({"title": "x"}, mutation_fn=api.mutation("POST", "/todos"), retry=2)
    await asyncio.wait_for(failed.wait(), TIMEOUT)  # the retry's timer is set from here on
    assert clock.next_timer_at() == clock.now() + 3
    await clock.advance(3)
    assert await asyncio.wait_for(mutation.result(), TIMEOUT) == {"id": 1}
    assert len(calls) == 2 and calls[0] == calls[1]  # the same idempotency key on the retry

    with pytest.raises(HTTPClientError):
        await client.mutate_async({}, mutation_fn=api.mutation("POST", "/bad"), retry=2)
    assert len(app.requests("POST", "/bad")) == 1
