"""Writes with If-Match against a real server: 409 and 412 become version-conflict events
carrying the server's current value, resolved (or not) by the mutation's policy."""

from __future__ import annotations

from typing import Any

import pytest

from crdtsync import QueryClient
from crdtsync.errors import ConflictError
from crdtsync.http import HttpClient, HTTPConflictError, rebase_on_server
from crdtsync.mutations import OptimisticTx
from crdtsync.mutations.events import VersionConflictDetected

from .conftest import App, Req, Resp

KEY = ("todos", 1)


class Todos:
    """Versioned todos; a write whose If-Match is not the current version is refused with
    ``status`` (409 with the current todo as body, or 412 with an empty body)."""

    def __init__(self, app: App, status: int = 409) -> None:
        self.status = status
        self.rows: dict[int, dict[str, Any]] = {1: {"id": 1, "title": "milk", "done": False, "version": 2}}
        app.route("GET", "/todos/{id}")(self.get)
        app.route("PATCH", "/todos/{id}")(self.patch)

    def etag(self, row: dict[str, Any]) -> dict[str, str]:
        return {"ETag": f'"{row["version"]}"'}

    def get(self, req: Req) -> Resp:
        row = self.rows[int(req.path_params["id"])]
        return Resp(200, row, self.etag(row))

    def patch(self, req: Req) -> Resp:
        row = self.rows[int(req.path_params["id"])]
        if req.headers.get("if-match") != f'"{row["version"]}"':
            return Resp(self.status, row if self.status == 409 else None, self.etag(row))
        fields = {k: v for k, v in req.json().items() if k not in ("id", "version")}
        row.update(fields, version=row["version"] + 1)
        return Resp(200, row, self.etag(row))


def edit(tx: OptimisticTx, variables: dict[str, Any]) -> None:
    tx.merge(("todos", variables["id"]), {"title": variables["title"]})


def conflicts(client: QueryClient) -> list[VersionConflictDetected]:
    events: list[VersionConflictDetected] = []
    client.mutation_cache.subscribe(lambda e: events.append(e) if isinstance(e, VersionConflictDetected) else None)
    return events


@pytest.mark.parametrize("status", [409, 412])
async def test_conflict_event_carries_the_server_value_and_the_policy_retries(
        app: App, api: HttpClient, client: QueryClient, status: int) -> None:
    server = Todos(app, status)
    await client.fetch_query(KEY, api.query("/todos/{1}"))
    server.rows[1].update(done=True, version=2)  # someone else wrote meanwhile
    events = conflicts(client)
    update = api.mutation("PATCH", "/todos/{id}", if_match="version")

    saved = await client.mutate_async({"id": 1, "title": "oat milk", "version": 1}, mutation_fn=update,
                                      optimistic=edit, resolve_conflict=rebase_on_server())

    assert saved == {"id": 1, "title": "oat milk", "done": True, "version": 3}
    [event] = events
    assert isinstance(event.conflict.error, HTTPConflictError) and event.conflict.error.status == status
    assert event.conflict.server_value == {"id": 1, "title": "milk", "done": True, "version": 2}
    assert event.conflict.server_version == 2
    assert event.resolved == {"id": 1, "title": "oat milk", "version": 2}
    writes = app.requests("PATCH", "/todos/1")
    assert [r.headers["if-match"] for r in writes] == ['"1"', '"2"']
    refetched = len(app.requests("GET", "/todos/1")) - 1
    assert refetched == (1 if status == 412 else 0)  # an empty 412 body: the value is read back
    assert client.get_query_data(KEY)["title"] == "oat milk"


async def test_without_a_resolver_the_conflict_fails_and_rolls_back(app: App, api: HttpClient,
                                                                    client: QueryClient) -> None:
    Todos(app)
    await client.fetch_query(KEY, api.query("/todos/{1}"))
    events = conflicts(client)

    with pytest.raises(ConflictError) as info:
        await client.mutate_async({"id": 1, "title": "oat milk", "version": 1}, optimistic=edit,
                                  mutation_fn=api.mutation("PATCH", "/todos/{id}", if_match="version"))

    cause = info.value.__cause__
    assert isinstance(cause, HTTPConflictError)
    assert cause.server_value == {"id": 1, "title": "milk", "done": False, "version": 2}
    assert [e.resolved for e in events] == [None]
    assert client.get_query_data(KEY)["title"] == "milk"  # the optimistic edit was rolled back


async def test_if_match_can_be_the_etag_of_the_last_get(app: App, api: HttpClient, client: QueryClient) -> None:
    Todos(app)
    await client.fetch_query(KEY, api.query("/todos/{1}"))
    assert api.etag(KEY) == '"2"'

    update = api.mutation("PATCH", "/todos/{id}", if_match=lambda v: api.etag(("todos", v["id"])))
    saved = await client.mutate_async({"id": 1, "title": "bread"}, mutation_fn=update)

    assert saved["version"] == 3
    assert app.requests("PATCH", "/todos/1")[0].headers["if-match"] == '"2"'


async def test_refetch_on_conflict_reads_the_value_instead_of_the_body(app: App, api: HttpClient,
                                                                        client: QueryClient) -> None:
    server = Todos(app)
    app.route("PATCH", "/odd/{id}")(lambda r: Resp(409, {"error": "stale version"}))
    app.route("GET", "/odd/{id}")(server.get)
    update = api.mutation("PATCH", "/odd/{id}", if_match="version", refetch_on_conflict=True)

    with pytest.raises(ConflictError) as info:
        await client.mutate_async({"id": 1, "title": "x", "version": 1}, mutation_fn=update)

    cause = info.value.__cause__
    assert isinstance(cause, HTTPConflictError)
    assert cause.server_value == server.rows[1] and cause.server_version == 2
