"""The measurement behind docs/postgres.md "Capture": the polling bridge's commit-to-stored
latency, its initial copy rate, its throughput on single-row transactions and the cost of an
idle poll, against a throwaway server. Not the issue's benchmarks/pg_feed.py (100 clients, a
LISTEN/NOTIFY baseline, JSON): that is still to be written. ``./run bench`` skips ``_`` files.

Run: python benchmarks/_pg_poll_latency.py
"""

from __future__ import annotations

import asyncio
import tempfile
import time

import psycopg

from crdtsync.normalize import EntityType
from crdtsync.postgres import PostgresBridge, Table
from crdtsync.postgres.pgoutput import parse_lsn
from crdtsync.testing.postgres import ThrowawayPostgres


async def main(url: str) -> None:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as c:
        await c.execute("CREATE TABLE todos (id int PRIMARY KEY, title text)")
        await c.execute("INSERT INTO todos SELECT g, 't' FROM generate_series(1, 100000) g")
        t = time.perf_counter()
        b = PostgresBridge(url, [Table("todos", EntityType("todo", granularity="plain"))],
                           ledger=tempfile.mkdtemp() + "/l.db")
        await b.start()
        print(f"initial copy: {b.copied_rows} rows in {time.perf_counter()-t:.2f}s")
        lat = []
        for i in range(300):
            await c.execute("UPDATE todos SET title = %s WHERE id = %s", (str(i), i + 1))
            t0 = time.perf_counter()
            row = await (await c.execute("SELECT pg_current_wal_lsn()::text")).fetchone()
            assert row is not None
            lsn = parse_lsn(row[0])
            await b.wait_for(lsn)
            lat.append((time.perf_counter() - t0) * 1000)
        lat.sort()
        print(f"commit->stored latency, poll_interval=10ms, 300 single-row commits:"
              f" p50 {lat[150]:.1f} ms p99 {lat[296]:.1f} ms")
        n0 = b.transactions_applied
        t = time.perf_counter()
        for i in range(2000):
            await c.execute("UPDATE todos SET title = %s WHERE id = %s", (f"x{i}", i + 1))
        await b.wait_caught_up(60)
        rate = (b.transactions_applied - n0) / (time.perf_counter() - t)
        print(f"2000 single-row transactions applied at {rate:.0f} txn/s (the writer runs alongside)")
        t = time.perf_counter()
        for _ in range(100):
            await b.slot.peek(await b.slot.current_lsn(), 1000)
        print(f"idle poll (current_lsn + empty peek): {(time.perf_counter()-t)*10:.2f} ms")
        await b.stop()

if __name__ == "__main__":
    with ThrowawayPostgres() as s:
        asyncio.run(main(s.url))
