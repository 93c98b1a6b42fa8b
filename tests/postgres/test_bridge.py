"""PostgresBridge against a real server: the initial copy, then INSERT / UPDATE / DELETE /
TRUNCATE / key changes streamed as one CRDT update per affected document per transaction,
only changed columns written (a concurrent edit of another field survives), resume from the
ledger, a consistent start under concurrent writes, one owner per slot."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from crdtsync.errors import SlotBusyError, TableMappingError
from crdtsync.normalize import EntityType
from crdtsync.origins import Origin
from crdtsync.postgres import PostgresBridge, Table, postgres_origin

from .tables import TODO, TODOS_DDL, doc_entities, table_entities


@pytest.fixture
async def sql(pg_url: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:
        await conn.execute(TODOS_DDL)
        yield conn


def bridge(pg_url: str, tmp_path: Path, *tables: Table, **kw: Any) -> PostgresBridge:
    return PostgresBridge(pg_url, list(tables) or [Table("todos", TODO)], ledger=tmp_path / "ledger.db", **kw)


async def test_copy_then_stream_insert_update_delete(pg_url: str, sql: Any, tmp_path: Path) -> None:
    await sql.execute("""INSERT INTO todos VALUES (1, 'a', false, '{"x": [1, 2]}'), (2, 'b', true, NULL)""")
    async with bridge(pg_url, tmp_path) as b:
        assert b.copied_rows == 2
        assert doc_entities(b.replica) == await table_entities(sql)
        assert doc_entities(b.replica)["1"] == {"id": 1, "title": "a", "done": False, "meta": {"x": [1, 2]}}
        await sql.execute("INSERT INTO todos VALUES (3, 'c')")
        await sql.execute("UPDATE todos SET done = true, meta = '{\"y\": null}' WHERE id = 1")
        await sql.execute("DELETE FROM todos WHERE id = 2")
        await b.wait_caught_up()
        assert doc_entities(b.replica) == await table_entities(sql)
        assert b.transactions_applied == 3
        assert set(doc_entities(b.replica)) == {"1", "3"}


async def test_one_update_per_document_per_transaction_with_its_origin(pg_url: str, sql: Any, tmp_path: Path) -> None:
    await sql.execute("CREATE TABLE users (login text PRIMARY KEY, name text)")
    user = EntityType("user", id="login")
    async with bridge(pg_url, tmp_path, Table("todos", TODO), Table("users", user)) as b:
        seen: list[tuple[str, Origin]] = []
        b.replica.on_update(lambda doc_id, _u, origin: seen.append((doc_id, origin)))
        async with sql.transaction():
            cur = await sql.execute("SELECT pg_current_xact_id()::text")
            xid = int((await cur.fetchone())[0])
            for i in range(5):
                await sql.execute("INSERT INTO todos VALUES (%s, %s)", (i, f"t{i}"))
            await sql.execute("UPDATE todos SET done = true WHERE id < 3")
            await sql.execute("INSERT INTO users VALUES ('ada', 'Ada')")
        await b.wait_caught_up()
        assert sorted(seen, key=lambda s: s[0]) == [("entity:todo", postgres_origin(xid)),
                                                     ("entity:user", postgres_origin(xid))]
        assert doc_entities(b.replica, user) == {"ada": {"login": "ada", "name": "Ada"}}
        assert doc_entities(b.replica) == await table_entities(sql)


@pytest.mark.parametrize("identity", ["DEFAULT", "FULL"])
async def test_an_update_writes_only_the_changed_columns(pg_url: str, sql: Any, tmp_path: Path, identity: str) -> None:
    await sql.execute(f"ALTER TABLE todos REPLICA IDENTITY {identity}")
    await sql.execute("INSERT INTO todos VALUES (1, 'a')")
    async with bridge(pg_url, tmp_path) as b:
        # A concurrent edit of another field (as a client's optimistic edit merged into the document).
        b.replica.write_path("entity:todo", ("1", "title"), "edited by a client")
        await sql.execute("UPDATE todos SET done = true WHERE id = 1")
        await b.wait_caught_up()
        assert doc_entities(b.replica)["1"] == {"id": 1, "title": "edited by a client", "done": True, "meta": None}
        # An UPDATE that changes nothing writes nothing.
        updates: list[str] = []
        b.replica.on_update(lambda doc_id, _u, _o: updates.append(doc_id))
        await sql.execute("UPDATE todos SET done = true WHERE id = 1")
        await b.wait_caught_up()
        assert updates == [] and b.transactions_applied == 2


async def test_key_change_truncate_and_unchanged_toast(pg_url: str, sql: Any, tmp_path: Path) -> None:
    await sql.execute("ALTER TABLE todos ALTER title SET STORAGE EXTERNAL")
    await sql.execute("INSERT INTO todos VALUES (1, repeat('x', 10000)), (2, 'b')")
    async with bridge(pg_url, tmp_path) as b:
        await sql.execute("UPDATE todos SET done = true WHERE id = 1")  # the TOASTed title is not resent
        await sql.execute("UPDATE todos SET id = 20 WHERE id = 2")
        await b.wait_caught_up()
        assert doc_entities(b.replica) == await table_entities(sql)
        assert doc_entities(b.replica)["1"]["title"] == "x" * 10000
        await sql.execute("TRUNCATE todos")
        await sql.execute("INSERT INTO todos VALUES (7, 'after')")
        await b.wait_caught_up()
        assert doc_entities(b.replica) == await table_entities(sql) == {"7": {"id": 7, "title": "after",
                                                                            "done": False, "meta": None}}


async def test_partitioned_entity_type_and_selected_columns(pg_url: str, sql: Any, tmp_path: Path) -> None:
    per_entity = EntityType("todo", partition="entity")
    await sql.execute("INSERT INTO todos VALUES (1, 'a'), (2, 'b')")
    async with bridge(pg_url, tmp_path, Table("todos", per_entity, columns=["title"])) as b:
        await sql.execute("UPDATE todos SET title = 'A', done = true WHERE id = 1")
        await b.wait_caught_up()
        assert sorted(b.replica.doc_ids()) == ["entity:todo:1", "entity:todo:2"]
        assert b.replica.read_path("entity:todo:1", ("1",)) == {"id": 1, "title": "A"}


async def test_resume_applies_what_happened_while_stopped_once(pg_url: str, sql: Any, tmp_path: Path) -> None:
    await sql.execute("INSERT INTO todos VALUES (1, 'a')")
    async with bridge(pg_url, tmp_path) as b:
        await sql.execute("INSERT INTO todos VALUES (2, 'b')")
        await b.wait_caught_up()
    await sql.execute("UPDATE todos SET title = 'A' WHERE id = 1")
    await sql.execute("INSERT INTO todos VALUES (3, 'c')")
    async with bridge(pg_url, tmp_path) as again:
        assert again.copied_rows == 0  # resumed, not copied
        await again.wait_caught_up()
        assert again.transactions_applied == 2
        assert doc_entities(again.replica) == await table_entities(sql)


async def test_consistent_start_under_concurrent_writes(pg_url: str, sql: Any, tmp_path: Path) -> None:
    await sql.execute("INSERT INTO todos SELECT g, 't' || g FROM generate_series(1, 2000) g")
    stop = asyncio.Event()

    async def writer() -> int:
        n = 0
        async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as w:
            while not stop.is_set():
                n += 1
                await w.execute("UPDATE todos SET title = title || '.' WHERE id = %s", (n % 2000 + 1,))
                await w.execute("INSERT INTO todos VALUES (%s, 'new') ON CONFLICT (id) DO UPDATE SET done = NOT"
                                " todos.done", (2000 + n % 50,))
                await w.execute("DELETE FROM todos WHERE id = %s", (2000 + (n * 7) % 50,))
        return n

    task = asyncio.create_task(writer())
    b = bridge(pg_url, tmp_path)
    await b.start()
    try:
        stop.set()
        assert await task > 0
        await b.wait_caught_up()
        assert doc_entities(b.replica) == await table_entities(sql)
    finally:
        await b.stop()


async def test_one_bridge_per_slot(pg_url: str, sql: Any, tmp_path: Path) -> None:
    async with bridge(pg_url, tmp_path):
        other = PostgresBridge(pg_url, [Table("todos", TODO)], ledger=tmp_path / "other.db")
        with pytest.raises(SlotBusyError):
            await other.start()


async def test_mapping_errors(pg_url: str, sql: Any, tmp_path: Path) -> None:
    await sql.execute("CREATE TABLE nokey (id int, x text)")
    for table in (Table("missing", TODO), Table("nokey", TODO), Table("todos", EntityType("todo", id="title")),
                  Table("todos", TODO, columns=["nope"])):
        with pytest.raises(TableMappingError):
            await bridge(pg_url, tmp_path, table).start()


async def test_a_lost_slot_means_a_fresh_copy(pg_url: str, sql: Any, tmp_path: Path) -> None:
    await sql.execute("INSERT INTO todos VALUES (1, 'a'), (2, 'b')")
    async with bridge(pg_url, tmp_path):
        pass
    await sql.execute("SELECT pg_drop_replication_slot('crdtsync')")  # as if invalidated
    await sql.execute("DELETE FROM todos WHERE id = 1")
    await sql.execute("INSERT INTO todos VALUES (3, 'c')")
    async with bridge(pg_url, tmp_path) as b:
        assert b.copied_rows == 2
        assert doc_entities(b.replica) == await table_entities(sql)
        await sql.execute("UPDATE todos SET done = true WHERE id = 3")
        await b.wait_caught_up()
        assert doc_entities(b.replica) == await table_entities(sql)
