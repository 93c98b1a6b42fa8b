"""Server-side change events pushed into the query layer.

A backend pushes row changes (insert, update, delete), filtered to one project, the way a
realtime subscription does. Each event is an update to the entity's subtree, so the list
query and the detail query that reference the entity are notified, and nothing else is.

Run: python examples/change_events.py
"""

from __future__ import annotations

import asyncio
from typing import Any

from crdtsync import FakeClock, QueryClient
from crdtsync.normalize import ChangeFeed, EntityType

task = EntityType("task", version="version")


async def main() -> None:
    client = QueryClient(clock=FakeClock())
    rows = [{"id": i, "title": f"task {i}", "project_id": 7, "version": 1} for i in range(3)]

    async def list_tasks(ctx: Any) -> Any:
        return rows

    async def get_task(ctx: Any) -> Any:
        return rows[1]

    await client.fetch_query(("tasks", {"project": 7}), list_tasks, normalize=[task])
    await client.fetch_query(("tasks", 1), get_task, normalize=task)

    notified: dict[str, int] = {"list": 0, "task 1": 0}
    list_obs = client.observe(("tasks", {"project": 7}), normalize=[task], enabled=False)
    one_obs = client.observe(("tasks", 1), normalize=task, enabled=False)
    stops = [
        list_obs.subscribe(lambda r: notified.__setitem__("list", notified["list"] + 1)),
        one_obs.subscribe(lambda r: notified.__setitem__("task 1", notified["task 1"] + 1)),
    ]

    feed = ChangeFeed(client.entities, task, where=lambda rec: rec.get("project_id") == 7)
    feed.apply({"op": "update", "record": {"id": 1, "title": "renamed", "project_id": 7, "version": 2}})
    feed.apply({"op": "update", "record": {"id": 1, "title": "late, older copy", "project_id": 7, "version": 1}})
    feed.apply({"op": "update", "record": {"id": 9, "title": "other project", "project_id": 8, "version": 1}})
    feed.apply({"op": "delete", "record": {"id": 2}})

    titles = [t["title"] for t in client.get_query_data(("tasks", {"project": 7}))]
    print("list titles:", titles)
    print("detail:", client.get_query_data(("tasks", 1)))
    print("notifications:", notified, "ignored events:", feed.ignored)
    assert titles == ["task 0", "renamed"]
    assert client.get_query_data(("tasks", 1))["title"] == "renamed"
    assert notified == {"list": 2, "task 1": 1}  # the list: rename + delete; the detail: rename
    assert feed.ignored == 1
    for stop in stops:
        stop()


if __name__ == "__main__":
    asyncio.run(main())
