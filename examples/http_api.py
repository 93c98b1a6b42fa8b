"""A REST API as the data source of a QueryClient, through crdtsync.http.

The example serves its own small API (a raw ASGI app under uvicorn, on a free loopback port):
``GET /todos``, ``GET /todos/{id}`` (with ETags), ``PATCH /todos/{id}`` (with ``If-Match``) and
``POST /auth/refresh``. Then, as a client:

- it fetches the list and one todo, and revalidates the todo: the server answers 304 and
  nothing is written and no observer hears of it;
- it marks a todo done with an optimistic mutation (the observer sees it before the server
  answers);
- its access token expires: three queries refetched together all get a 401, the token is
  refreshed once, and all three are sent again and succeed;
- someone else edits todo 2; our edit based on the old version gets a 409 carrying the
  server's todo, and the ``rebase_on_server`` policy sends it again on the new version.

Run: python examples/http_api.py   (exits 0 in about a second)
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from crdtsync import QueryClient
from crdtsync.http import HttpClient, TokenAuth, rebase_on_server
from crdtsync.http.testing import serve_asgi
from crdtsync.mutations import OptimisticTx, VersionConflictDetected

Scope = dict[str, Any]


class TodoApi:
    """The server: three todos with versions, and access tokens that expire."""

    def __init__(self) -> None:
        self.todos: dict[int, dict[str, Any]] = {
            i: {"id": i, "title": title, "done": False, "version": 1}
            for i, title in enumerate(["buy milk", "write report", "call mum"], start=1)
        }
        self.tokens = {"token-1"}
        self.issued = 1

    def expire_tokens(self) -> None:
        """Time passes: every access token issued so far expires."""
        self.tokens.clear()

    def edit_elsewhere(self, todo_id: int, **fields: Any) -> None:
        """Another user's write, straight into the server's data."""
        row = self.todos[todo_id]
        row.update(fields, version=row["version"] + 1)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        body = b""
        more = True
        while more:
            message = await receive()
            body, more = body + message.get("body", b""), message.get("more_body", False)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        status, payload, extra = self.handle(scope["method"], scope["path"].strip("/").split("/"), headers, body)
        out = [(b"content-type", b"application/json"), *((k.encode(), v.encode()) for k, v in extra.items())]
        await send({"type": "http.response.start", "status": status, "headers": out})
        await send({"type": "http.response.body", "body": b"" if payload is None else json.dumps(payload).encode()})

    def handle(self, method: str, parts: list[str], headers: dict[str, str],
               body: bytes) -> tuple[int, Any, dict[str, str]]:
        if parts == ["auth", "refresh"] and method == "POST":
            self.issued += 1
            token = f"token-{self.issued}"
            self.tokens.add(token)
            return 200, {"token": token}, {}
        token = headers.get("authorization", "").removeprefix("Bearer ")
        if token not in self.tokens:
            return 401, {"error": "token expired"}, {}
        if parts == ["todos"] and method == "GET":
            rows = list(self.todos.values())
            return self.conditional(headers, rows, f'"list-{sum(r["version"] for r in rows)}"')
        if len(parts) != 2 or parts[0] != "todos" or not parts[1].isdigit() or int(parts[1]) not in self.todos:
            return 404, {"error": "not found"}, {}
        row = self.todos[int(parts[1])]
        if method == "GET":
            return self.conditional(headers, row, f'"{row["version"]}"')
        if method == "PATCH":
            if headers.get("if-match") != f'"{row["version"]}"':
                return 409, row, {"ETag": f'"{row["version"]}"'}
            fields = {k: v for k, v in json.loads(body).items() if k in ("title", "done")}
            row.update(fields, version=row["version"] + 1)
            return 200, row, {"ETag": f'"{row["version"]}"'}
        return 405, {"error": "method not allowed"}, {}

    @staticmethod
    def conditional(headers: dict[str, str], value: Any, etag: str) -> tuple[int, Any, dict[str, str]]:
        if headers.get("if-none-match") == etag:
            return 304, None, {"ETag": etag}
        return 200, value, {"ETag": etag}


def set_fields(tx: OptimisticTx, variables: dict[str, Any]) -> None:
    """The optimistic edit: the fields we send, on the todo's query, at once."""
    tx.merge(("todos", variables["id"]), {k: v for k, v in variables.items() if k in ("title", "done")})


async def main() -> int:
    server = TodoApi()
    statuses: list[int] = []
    async with serve_asgi(server) as base_url:
        client = QueryClient()
        client.mount()

        async def refresh() -> str:
            answer = await api.request("POST", "/auth/refresh", auth=False)
            print(f"  refreshed the token: {answer.json()['token']}")
            return str(answer.json()["token"])

        auth = TokenAuth("token-1", refresh=refresh)
        api = HttpClient(base_url, auth=auth, online_manager=client.online_manager,
                         after_response=[lambda response: statuses.append(response.status_code)])
        todo = api.query("/todos/{1}")
        update = api.mutation("PATCH", "/todos/{id}", if_match="version")
        client.set_mutation_defaults(("todos", "update"), mutation_fn=update, optimistic=set_fields,
                                     resolve_conflict=rebase_on_server())
        print(f"serving the todo API on {base_url}")

        todos = await client.fetch_query(("todos",), api.query())
        print(f"GET /todos: {[t['title'] for t in todos]}")
        observer = client.observe(("todos", 1), todo, notify_on_change_props=["data"])
        seen: list[Any] = []
        stop = observer.subscribe(lambda result: seen.append(result.data))
        first = (await observer.refetch()).data
        print(f"GET /todos/1: {first}")

        updates: list[str] = []
        client.replica.on_update(lambda doc_id, update, origin: updates.append(doc_id))
        again = await observer.refetch()
        print(f"revalidated todo 1: HTTP {statuses[-1]}, {len(updates)} CRDT updates, "
              f"same object: {again.data is first}, observer calls: {len(seen)}")
        assert statuses[-1] == 304 and not updates and again.data is first

        mutation = client.mutate({"id": 1, "done": True, "version": first["version"]}, mutation_key=("todos", "update"))
        print(f"optimistic: the observer already shows done={seen[-1]['done']} (mutation {mutation.state.status})")
        saved = await mutation.result()
        print(f"PATCH /todos/1 confirmed: version {saved['version']}")

        server.expire_tokens()
        print("the access token expires; todos 1 to 3 are refetched together")
        before = auth.refresh_count
        rows = await asyncio.gather(*(client.fetch_query(("todos", i), todo) for i in (1, 2, 3)))
        print(f"  all three arrived ({[r['title'] for r in rows]}) after {auth.refresh_count - before} refresh, "
              f"{statuses.count(401)} answers were 401")
        assert auth.refresh_count == 1 and statuses.count(401) == 3

        server.edit_elsewhere(2, title="write the annual report")
        print("someone else renamed todo 2 on the server (now version 2)")

        def report(event: object) -> None:
            if isinstance(event, VersionConflictDetected):
                c = event.conflict
                print(f"  409: we sent version {c.variables['version']}, the server has {c.server_value}; "
                      f"policy retries on version {c.server_version}")

        client.mutation_cache.subscribe(report)
        final = await client.mutate_async({"id": 2, "done": True, "version": rows[1]["version"]},
                                          mutation_key=("todos", "update"))
        print(f"todo 2 after the retry: {final}")
        assert final == {"id": 2, "title": "write the annual report", "done": True, "version": 3}
        assert server.todos[1]["done"] and client.get_query_data(("todos", 2))["done"]

        stop()
        await api.aclose()
        client.unmount()
        await client.close()
    print("done")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
