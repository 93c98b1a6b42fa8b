"""kill -9 of the bridge (a process of its own) at a moment hypothesis picks: after the copy,
or at the N-th transaction just after it reached the replica, just after its ledger commit, or
just after the slot advanced. A new bridge on the same ledger then resumes: its documents
equal the table, every transaction was stored exactly once over both runs (none lost, none
applied twice), whatever happened to the table meanwhile."""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crdtsync.postgres import PostgresBridge, Table

from .conftest import fresh_database
from .tables import TODO, TODOS_DDL, doc_entities, table_entities

CHILD = str(Path(__file__).with_name("bridge_child.py"))

# One workload transaction: always inserts a new row (so no transaction is empty), then
# updates and deletes some of the first 20 rows.
_txn = st.tuples(st.lists(st.integers(1, 20), max_size=3), st.lists(st.integers(1, 20), max_size=2),
                 st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=8))


async def _run(conn: Any, txns: list[tuple[list[int], list[int], str]], first_id: int) -> None:
    for i, (updates, deletes, title) in enumerate(txns):
        async with conn.transaction():
            await conn.execute("INSERT INTO todos VALUES (%s, %s)", (first_id + i, title))
            for row in updates:
                await conn.execute("UPDATE todos SET title = %s, done = NOT done WHERE id = %s", (title, row))
            for row in deletes:
                await conn.execute("DELETE FROM todos WHERE id = %s", (row,))


async def _scenario(server: str, phase: str, kill_at: int, before: list[Any], after: list[Any]) -> None:
    with fresh_database(server) as url, tempfile.TemporaryDirectory() as tmp:
        ledger = str(Path(tmp) / "ledger.db")
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await conn.execute(TODOS_DDL)
            await conn.execute("INSERT INTO todos SELECT g, 't' || g FROM generate_series(1, 20) g")
            proc = await asyncio.create_subprocess_exec(sys.executable, CHILD, url, ledger, phase, str(kill_at),
                                                        stdout=asyncio.subprocess.PIPE)
            assert proc.stdout is not None
            started = asyncio.Event()
            stored_first: list[int] = []

            async def read(stream: asyncio.StreamReader) -> None:
                async for line in stream:
                    word, *rest = line.decode().split()
                    if word == "started":
                        started.set()
                    elif word == "stored":
                        stored_first.append(int(rest[0]))

            reader = asyncio.create_task(read(proc.stdout))
            try:
                if phase == "copied":  # killed right after the copy: no change may race the copy
                    assert await asyncio.wait_for(proc.wait(), 60) == -9
                else:
                    await asyncio.wait_for(started.wait(), 60)
                await _run(conn, before, 1000)
                assert await asyncio.wait_for(proc.wait(), 60) == -9  # it died where it was told to
            finally:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
            await reader
            await _run(conn, after, 2000)
            stored_second: list[int] = []
            bridge = PostgresBridge(url, [Table("todos", TODO)], ledger=ledger,
                                    on_progress=lambda p, lsn: stored_second.append(lsn) if p == "stored" else None)
            async with bridge:
                assert bridge.copied_rows == 0  # resumed from the ledger, not copied again
                await bridge.wait_caught_up(timeout=30)
                assert doc_entities(bridge.replica) == await table_entities(conn)
            assert not set(stored_first) & set(stored_second), "a transaction was applied twice"
            assert len(set(stored_first) | set(stored_second)) == len(before) + len(after), "a transaction was lost"


@pytest.mark.parametrize("phase", ["copied", "applied", "stored", "confirmed"])
@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_kill_9_of_the_bridge_resumes_with_nothing_lost_and_nothing_applied_twice(
        pg_server: str, phase: str, data: st.DataObject) -> None:
    before = data.draw(st.lists(_txn, min_size=1, max_size=6), label="before")
    kill_at = 1 if phase == "copied" else data.draw(st.integers(1, len(before)), label="kill_at")
    after = data.draw(st.lists(_txn, max_size=3), label="after")
    asyncio.run(_scenario(pg_server, phase, kill_at, before, after))
