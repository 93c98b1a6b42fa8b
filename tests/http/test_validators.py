"""Conditional GETs: the validator store's rules, then 304 revalidation through a query
against a real server (no write, no data notification; a 200 with new data does both)."""

from __future__ import annotations

from typing import Any

import pytest

from crdtsync import QueryClient, QueryObserverResult
from crdtsync.http import HttpClient, ValidatorStore

from .conftest import App, Req, Resp

KEY = ("todos", 1)
# Every notifying field but fetch_status, which a refetch changes whatever the answer.
PROPS = ["data", "error", "status", "is_stale", "is_placeholder_data"]


def test_store_keeps_validators_per_key_and_url() -> None:
    store = ValidatorStore()
    store.store(KEY, "/todos/1", {"etag": '"a"', "last-modified": "Tue, 01 Dec 2026 10:00:00 GMT"}, {"v": 1})

    found = store.get(KEY, "/todos/1")
    assert found is not None and found.data == {"v": 1}
    assert found.request_headers() == {"If-None-Match": '"a"', "If-Modified-Since": "Tue, 01 Dec 2026 10:00:00 GMT"}
    assert store.get(KEY, "/todos/1?x=2") is None  # another URL for the same key: unconditional
    assert store.get(("todos", 2), "/todos/1") is None
    assert store.etag(KEY) == '"a"'

    store.store(KEY, "/todos/1?page=2", {"etag": '"b"'}, {"v": 2})  # a second page of the same key
    assert store.etag(KEY) == '"b"' and store.get(KEY, "/todos/1") is found and len(store) == 2

    store.store(KEY, "/todos/1", {}, {"v": 3})  # an answer without validators forgets that URL
    assert store.get(KEY, "/todos/1") is None and store.etag(KEY) is None
    store.forget(KEY)
    assert len(store) == 0


def test_store_is_bounded_least_recently_used_first() -> None:
    store = ValidatorStore(max_entries=2)
    for i in range(3):
        store.store(("k", i), f"/k/{i}", {"etag": f'"{i}"'}, i)
        if i == 1:
            store.get(("k", 0), "/k/0")  # touch 0: 1 is now the oldest
    assert len(store) == 2
    assert store.etag(("k", 0)) == '"0"' and store.etag(("k", 1)) is None and store.etag(("k", 2)) == '"2"'
    assert len(store._last_url) == 2  # no pointer outlives its entry
    store.forget(("k", 0))
    assert store.etag(("k", 0)) is None
    store.forget()
    assert len(store) == 0
    with pytest.raises(ValueError):
        ValidatorStore(max_entries=0)


class Todo:
    """One todo with an ETag; answers 304 to a matching If-None-Match or If-Modified-Since."""

    def __init__(self, app: App, *, etag: bool = True) -> None:
        self.version = 1
        self.use_etag = etag
        self.statuses: list[int] = []
        app.route("GET", "/todos/{id}")(self.get)

    def validators(self) -> dict[str, str]:
        if self.use_etag:
            return {"ETag": f'"v{self.version}"'}
        return {"Last-Modified": f"Tue, 01 Dec 2026 10:00:0{self.version} GMT"}

    def get(self, req: Req) -> Resp:
        mine = self.validators()
        asked = {"ETag": req.headers.get("if-none-match"), "Last-Modified": req.headers.get("if-modified-since")}
        fresh = any(asked[name] == value for name, value in mine.items())
        status = 304 if fresh else 200
        self.statuses.append(status)
        return Resp(status, None if fresh else {"id": 1, "title": f"milk v{self.version}"}, mine)


@pytest.mark.parametrize("etag", [True, False], ids=["etag", "last-modified"])
async def test_304_writes_nothing_and_notifies_no_observer(app: App, api: HttpClient, client: QueryClient,
                                                           etag: bool) -> None:
    todo = Todo(app, etag=etag)
    observer = client.observe(KEY, api.query("/todos/{1}"), notify_on_change_props=PROPS)
    seen: list[QueryObserverResult] = []
    stop = observer.subscribe(seen.append)
    first = await observer.refetch()
    assert first.data == {"id": 1, "title": "milk v1"}
    updates: list[Any] = []
    stop_updates = client.replica.on_update(lambda doc, update, origin: updates.append(origin))
    notified = len(seen)

    again = await observer.refetch()

    assert todo.statuses == [200, 304]
    conditional = app.log[-1].headers
    assert conditional.get("if-none-match" if etag else "if-modified-since") is not None
    assert again.data is first.data  # the very same object
    assert updates == []  # no CRDT update
    assert len(seen) == notified  # no observer notified
    assert again.data_updated_at >= first.data_updated_at  # revalidated: fresh from now

    todo.version = 2  # the control: a changed answer writes and notifies
    changed = await observer.refetch()

    assert todo.statuses == [200, 304, 200]
    assert changed.data == {"id": 1, "title": "milk v2"}
    assert len(updates) == 1 and len(seen) == notified + 1
    stop_updates()
    stop()


async def test_the_kept_body_is_the_servers_not_a_local_edit(app: App, api: HttpClient,
                                                            client: QueryClient) -> None:
    Todo(app)
    await client.fetch_query(KEY, api.query("/todos/{1}"))
    client.set_query_data(KEY, {"id": 1, "title": "edited here"})

    data = await client.fetch_query(KEY, api.query("/todos/{1}"))

    assert app.log[-1].headers["if-none-match"] == '"v1"'
    assert data == {"id": 1, "title": "milk v1"}  # a 304 means the server still says v1


async def test_unconditional_query_sends_no_validators(app: App, api: HttpClient, client: QueryClient) -> None:
    todo = Todo(app)
    fn = api.query("/todos/{1}", conditional=False)
    await client.fetch_query(KEY, fn)
    await client.fetch_query(KEY, fn)

    assert todo.statuses == [200, 200]
    assert "if-none-match" not in app.log[-1].headers
    assert api.etag(KEY) is None


async def test_each_page_of_an_infinite_query_revalidates(app: App, api: HttpClient, client: QueryClient) -> None:
    statuses: list[int] = []

    def page(req: Req) -> Resp:
        n = int(req.params["page"])
        etag = f'"p{n}"'
        status = 304 if req.headers.get("if-none-match") == etag else 200
        statuses.append(status)
        return Resp(status, None if status == 304 else {"items": [n], "next": n + 1 if n < 2 else None},
                    {"ETag": etag})

    app.route("GET", "/feed")(page)
    feed = api.query("/feed", params=lambda ctx: {"page": ctx.page_param})
    options: dict[str, Any] = {"initial_page_param": 0,
                               "get_next_page_param": lambda last, pages, param, params: last["next"]}
    await client.fetch_infinite_query(("feed",), feed, **options)
    await client.fetch_next_page(("feed",))
    await client.fetch_next_page(("feed",))
    before = client.get_query_data(("feed",))
    updates: list[Any] = []
    client.replica.on_update(lambda doc, update, origin: updates.append(origin))

    await client.refetch_queries(("feed",))

    assert statuses == [200, 200, 200, 304, 304, 304]
    assert [r.params["page"] for r in app.log] == ["0", "1", "2", "0", "1", "2"]
    assert updates == [] and client.get_query_data(("feed",)) == before
