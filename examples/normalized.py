"""Normalized entities: one copy of each todo, shared by a list query and detail queries.

Shows:

1. a list query and two detail queries whose results contain the same todos: each todo is
   stored once (in the ``entity:todo`` document) and the queries hold ids;
2. an edit to one todo notifies exactly the observers whose data contains it (the list and
   that todo's detail), not the other detail;
3. a peer's edit, arriving as a binary CRDT update, does the same;
4. monotonic reads: a slow response carrying an older version of a todo, arriving after a
   newer one, does not overwrite it;
5. a large read-mostly list (20,000 log lines, granularity "plain"): one edit patches the
   observed list in place of rebuilding it, and a window of 50 is read without building the
   list.

Time is injected (a FakeClock) and the "server" is a dict, so it runs in well under a second.

Run: python examples/normalized.py   (see docs/normalization.md)
"""

from __future__ import annotations

import asyncio
from typing import Any

from crdtsync import FakeClock, QueryClient, QueryFunctionContext
from crdtsync.normalize import EntityType
from crdtsync.origins import remote_origin

# ``version`` names the field that orders copies of one todo: a lower one never overwrites.
todo = EntityType("todo", id="id", version="version")

SERVER: dict[int, dict[str, Any]] = {
    1: {"id": 1, "title": "buy milk", "done": False, "version": 1},
    2: {"id": 2, "title": "walk the dog", "done": False, "version": 1},
    3: {"id": 3, "title": "write docs", "done": True, "version": 1},
}


async def fetch_list(ctx: QueryFunctionContext) -> Any:
    return [dict(t) for t in SERVER.values()]


async def fetch_todo(ctx: QueryFunctionContext) -> Any:
    return dict(SERVER[int(ctx.query_key[1])])


class Count:
    def __init__(self) -> None:
        self.n = 0

    def __call__(self, result: Any) -> None:
        self.n += 1


async def main() -> None:
    clock = FakeClock()
    client = QueryClient(clock=clock)
    # Declare the shapes once per key prefix; every fetch, observer and read uses them.
    # (for a key under both prefixes, the later call wins).
    client.set_query_defaults(("todos",), normalize=todo)  # details: ("todos", <id>)
    client.set_query_defaults(("todos", "list"), normalize=[todo])

    # 1. One list query and two detail queries share todos 1 and 2.
    await client.fetch_query(("todos", "list"), fetch_list)
    await client.fetch_query(("todos", 1), fetch_todo)
    await client.fetch_query(("todos", 2), fetch_todo)
    stored_list = client.replica.read(("todos", "list"))
    print("the list query stores ids:", stored_list)
    assert stored_list == ["1", "2", "3"]
    assert client.replica.read_path("entity:todo", ("1",))["title"] == "buy milk"

    counts = {"list": Count(), "todo 1": Count(), "todo 2": Count()}
    stops = [
        client.observe(("todos", "list"), enabled=False).subscribe(counts["list"]),
        client.observe(("todos", 1), enabled=False).subscribe(counts["todo 1"]),
        client.observe(("todos", 2), enabled=False).subscribe(counts["todo 2"]),
    ]

    # 2. A local edit of todo 1: the list and todo 1's detail are told, once each.
    client.entities.update(todo, 1, {"done": True})
    notified = {k: c.n for k, c in counts.items()}
    print("after editing todo 1:", notified)
    assert notified == {"list": 1, "todo 1": 1, "todo 2": 0}
    assert client.get_query_data(("todos", "list"))[0]["done"] is True
    assert client.get_query_data(("todos", 1))["done"] is True

    # 3. A peer edits todo 2; its binary update reaches the list and todo 2's detail only.
    peer = QueryClient(clock=clock)
    doc = todo.doc_id("2")  # "entity:todo": one document per entity type by default
    peer.replica.apply_update(doc, client.replica.get_update(doc))
    before = client.replica.state_vector(doc)
    peer.entities.update(todo, 2, {"title": "walk the dog (done by Bo)", "done": True})
    client.replica.apply_update(doc, peer.replica.get_update(doc, before), origin=remote_origin("bo"))
    notified = {k: c.n for k, c in counts.items()}
    print("after the peer edited todo 2:", notified)
    assert notified == {"list": 2, "todo 1": 1, "todo 2": 1}
    assert client.get_query_data(("todos", 2))["title"] == "walk the dog (done by Bo)"

    # 4. Monotonic reads. A request for todo 3 starts while the server still has version 1,
    #    but its response is slow. Meanwhile the server moves to version 2 and the list
    #    refetch brings it. When the slow, older response finally lands, it is ignored.
    old_copy = dict(SERVER[3])
    release = asyncio.Event()

    async def slow_old_todo(ctx: QueryFunctionContext) -> Any:
        await release.wait()
        return old_copy  # version 1

    slow = asyncio.create_task(client.fetch_query(("todos", 3), slow_old_todo))
    await clock.settle()  # the slow request is now in flight
    SERVER[3] = {"id": 3, "title": "write docs (reviewed)", "done": True, "version": 2}
    await client.fetch_query(("todos", "list"), fetch_list, stale_time=0)
    release.set()
    detail = await slow
    print("todo 3 after the late, older response:", detail)
    assert detail["version"] == 2 and detail["title"] == "write docs (reviewed)"
    assert client.get_query_data(("todos", "list"))[2]["version"] == 2
    assert client.entities.skipped_stale == 1

    # 5. A large, read-mostly list. "plain" stores each entry as one value: about half the
    #    memory of "fields" (docs/normalization.md has the 100,000-entity measurements).
    line = EntityType("line", granularity="plain")
    lines = [{"id": i, "text": f"line {i}", "level": "info"} for i in range(20_000)]

    async def fetch_log(ctx: QueryFunctionContext) -> Any:
        return lines

    log_key = ("log", "today")
    await client.fetch_query(log_key, fetch_log, normalize=[line])
    before = client.get_query_data(log_key)
    log_notes = Count()
    stops.append(client.observe(log_key, normalize=[line], enabled=False).subscribe(log_notes))
    client.entities.update(line, 12_345, {"level": "error"})
    after = client.get_query_data(log_key)
    print("log observer notified", log_notes.n, "time(s) for one edit in 20,000 lines")
    assert log_notes.n == 1 and after[12_345]["level"] == "error"
    assert after[0] is before[0] and after[19_999] is before[19_999]  # the rest is shared, not rebuilt
    window = client.entities.read_window(log_key, 12_340, 12_350, line)
    assert [w["id"] for w in window] == list(range(12_340, 12_350)) and window[5]["level"] == "error"

    for stop in stops:
        stop()
    await client.close()
    await peer.close()
    print("ok")


if __name__ == "__main__":
    asyncio.run(main())
