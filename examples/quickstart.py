"""crdtsync quickstart: queries over CRDT documents, in one process.

Shows fetching with a stale time, a refetch once the data is stale, prefix invalidation with a
cascade (users -> that user's posts), and an observer with ``select`` that is not notified by
an unrelated change. Time is injected (a FakeClock), so the example runs instantly.

Run: python examples/quickstart.py
"""

from __future__ import annotations

import asyncio
from typing import Any

from crdtsync import Cascades, FakeClock, KeyFamily, QueryClient, QueryFunctionContext

# -- a fake in-process API ------------------------------------------------------------------
DB: dict[str, Any] = {
    "users": {"1": {"name": "Ada", "email": "ada@example.org"}},
    "posts": {"1": [{"id": 10, "title": "Hello"}]},
}
calls: list[str] = []


async def fetch_user(ctx: QueryFunctionContext) -> Any:
    uid = str(ctx.query_key[1])
    calls.append(f"GET /users/{uid}")
    return dict(DB["users"][uid])


async def fetch_posts(ctx: QueryFunctionContext) -> Any:
    uid = str(ctx.query_key[2])
    calls.append(f"GET /users/{uid}/posts")
    return list(DB["posts"][uid])


# -- key families and a cascade ---------------------------------------------------------------
users = KeyFamily("users", detail=lambda uid: (uid,))
posts = KeyFamily("posts", by_user=lambda uid: ("by_user", uid))
cascades = Cascades()
cascades.add(users.all, lambda key: posts.by_user(key[1]) if len(key) > 1 else posts.all)


async def main() -> None:
    clock = FakeClock()
    client = QueryClient(clock=clock, cascades=cascades)

    # 1. Fetch, then read from the cache while fresh.
    user = await client.fetch_query(users.detail(1), fetch_user, stale_time=60)
    print("fetched:", user)
    await client.fetch_query(users.detail(1), fetch_user, stale_time=60)
    print("second read served from cache:", calls == ["GET /users/1"])

    # 2. Observers: one selects the name only; its listener runs only when the name changes.
    name_observer = client.observe(users.detail(1), fetch_user, stale_time=60, select=lambda u: u["name"],
                                   notify_on_change_props=["data"])
    names: list[str] = []
    stop = name_observer.subscribe(lambda result: names.append(result.data))
    posts_observer = client.observe(posts.by_user(1), fetch_posts, stale_time=60)
    stop_posts = posts_observer.subscribe(lambda result: None)
    await clock.settle()
    print("observer sees:", name_observer.get_current_result().data)

    # An unrelated change (the email) does not notify the name observer.
    client.set_query_data(users.detail(1), lambda u: {**u, "email": "ada@lovelace.org"})
    print("after an email change, name notifications:", names)

    # 3. Staleness: after 60 s the data is stale and a refetch brings the server's new name.
    DB["users"]["1"]["name"] = "Ada Lovelace"
    await clock.advance(61)
    print("stale now:", name_observer.get_current_result().is_stale)
    await name_observer.refetch()
    print("after refetch, name notifications:", names)

    # 4. Invalidate a user: the cascade also invalidates (and refetches) that user's posts.
    DB["posts"]["1"].append({"id": 11, "title": "Second post"})
    calls.clear()
    await client.invalidate_queries(users.detail(1))
    print("invalidation refetched:", sorted(calls))
    print("posts now:", [p["title"] for p in client.get_query_data(posts.by_user(1))])

    # 5. The data lives in a CRDT document: this is the update a peer would receive.
    doc_update = client.replica.get_update("users")
    print(f"document 'users' encodes to {len(doc_update)} bytes")

    stop()
    stop_posts()
    await client.close()
    assert names == ["Ada Lovelace"], names
    assert sorted(calls) == ["GET /users/1", "GET /users/1/posts"], calls


if __name__ == "__main__":
    asyncio.run(main())
