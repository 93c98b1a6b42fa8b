"""ReplicaPersister: restore before the network, throttling, max_age/buster, corruption."""

from __future__ import annotations

import logging
import os
import random
import sqlite3
import zlib
from pathlib import Path
from typing import Any

import pytest

from crdtsync import FakeClock, QueryClient
from crdtsync.offline import ReplicaPersister, RestoreOutcome
from crdtsync.offline.persist import META_DOC
from crdtsync.replica import Replica
from crdtsync.storage import CompactionPolicy

TODOS = {"1": {"title": "milk", "done": False}, "2": {"title": "eggs", "done": True}}


async def fetch_todo(ctx: Any) -> Any:
    return TODOS[str(ctx.query_key[1])]


async def never(ctx: Any) -> Any:
    raise AssertionError("a restored fresh query must not be fetched")


async def seeded(path: Path, clock: FakeClock, **kw: Any) -> None:
    client = QueryClient(clock=clock)
    p = ReplicaPersister(client, path, **kw)
    assert (await p.open()).outcome is RestoreOutcome.EMPTY
    for i in ("1", "2"):
        await client.fetch_query(("todo", i), fetch_todo)
    await p.close()


async def test_restore_gives_observers_cached_data_before_any_network(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "cache.db"
    await seeded(path, clock)
    fetched_at = clock.now()
    await clock.advance(10)

    client = QueryClient(clock=clock)
    p = ReplicaPersister(client, path)
    report = await p.open()
    assert report.outcome is RestoreOutcome.RESTORED and report.queries == 2
    state = client.get_query_state(("todo", "1"))
    assert state is not None and state.status == "success" and state.data_updated_at == fetched_at
    seen: list[Any] = []
    obs = client.observe(("todo", "1"), never, stale_time=60)
    unsub = obs.subscribe(lambda r: seen.append(r.data))
    assert obs.get_current_result().data == TODOS["1"]
    assert not obs.get_current_result().is_stale  # data_updated_at survived, so no refetch
    unsub()
    await p.close()
    await client.close()


async def test_stale_restored_query_is_stale(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "cache.db"
    await seeded(path, clock)
    await clock.advance(120)
    client = QueryClient(clock=clock)
    p = ReplicaPersister(client, path)
    await p.open()
    query = client.query_cache.find(("todo", "2"))
    assert query is not None and query.is_stale_by_time(60) and not query.is_stale_by_time(600)
    await p.close()


async def test_buster_mismatch_discards(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "cache.db"
    await seeded(path, clock, buster="v1")
    client = QueryClient(clock=clock)
    p = ReplicaPersister(client, path, buster="v2")
    report = await p.open()
    assert report.outcome is RestoreOutcome.BUSTED
    assert client.get_query_data(("todo", "1")) is None
    await p.close()
    again = ReplicaPersister(QueryClient(clock=clock), path, buster="v2")
    assert (await again.open()).outcome is RestoreOutcome.EMPTY  # really gone from the file
    await again.close()


async def test_max_age_discards(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "cache.db"
    await seeded(path, clock, max_age=100)
    await clock.advance(99)
    p = ReplicaPersister(QueryClient(clock=clock), path, max_age=100)
    assert (await p.open()).outcome is RestoreOutcome.RESTORED  # and this open re-records the time
    await p.close()
    await clock.advance(101)
    client = QueryClient(clock=clock)
    p = ReplicaPersister(client, path, max_age=100)
    assert (await p.open()).outcome is RestoreOutcome.EXPIRED
    assert client.get_query_data(("todo", "1")) is None
    await p.close()


async def test_writes_are_throttled_and_coalesced(tmp_path: Path) -> None:
    clock = FakeClock()
    replica = Replica()
    p = ReplicaPersister(replica, tmp_path / "c.db", throttle=2.0, clock=clock)
    await p.open()
    base = p.appends
    for i in range(1000):
        replica.write(("counter", "a"), {"n": i})
        replica.write(("counter", "b"), {"n": -i})
    assert p.pending_updates == 2000 and p.appends == base
    await clock.advance(1.9)
    assert p.appends == base  # not yet due
    await clock.advance(0.2)
    await p.wait_flushed()
    assert p.appends == base + 1  # both keys live in document "counter": one merged append
    assert p.pending_updates == 0
    await p.close()
    r2 = Replica()
    p2 = ReplicaPersister(r2, tmp_path / "c.db", clock=clock)
    await p2.open()
    assert r2.read(("counter", "a")) == {"n": 999} and r2.read(("counter", "b")) == {"n": -999}
    await p2.close()


async def test_close_flushes_what_is_pending(tmp_path: Path) -> None:
    clock = FakeClock()
    replica = Replica()
    p = ReplicaPersister(replica, tmp_path / "c.db", throttle=3600, clock=clock)
    await p.open()
    replica.write(("k", "x"), "late")
    await p.close()
    r2 = Replica()
    p2 = ReplicaPersister(r2, tmp_path / "c.db", clock=clock)
    await p2.open()
    assert r2.read(("k", "x")) == "late"
    await p2.close()


async def test_compaction_by_count_and_on_demand(tmp_path: Path) -> None:
    clock = FakeClock()
    replica = Replica()
    policy = CompactionPolicy(max_log_updates=3)
    p = ReplicaPersister(replica, tmp_path / "c.db", throttle=0.5, clock=clock, policy=policy)
    await p.open()
    for i in range(10):
        replica.write(("doc", "k"), i)
        await clock.advance(0.5)
        await p.wait_flushed()
    assert p.store is not None and p.store.compactions >= 2
    stat = await p.store.stat("doc")
    assert stat is not None and stat.log_updates < 3
    replica.write(("doc", "k"), "last")
    await p.compact()
    stat = await p.store.stat("doc")
    assert stat is not None and stat.log_updates == 0
    await p.close()


# -- corruption ----------------------------------------------------------------------------


async def corrupt_then_open(path: Path, damage: Any, caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    await seeded(path, clock)
    damage(path)
    client = QueryClient(clock=clock)
    p = ReplicaPersister(client, path)
    with caplog.at_level(logging.WARNING, logger="crdtsync.offline"):
        report = await p.open()
    assert report.outcome is RestoreOutcome.CORRUPT, report
    assert report.moved_to is not None and os.path.exists(report.moved_to)  # evidence kept
    assert any("corrupt" in r.getMessage() for r in caplog.records)
    assert client.get_query_data(("todo", "1")) is None  # started clean
    client.set_query_data(("todo", "9"), {"title": "new"})  # and the fresh file works
    await p.close()
    r2 = QueryClient(clock=clock)
    p2 = ReplicaPersister(r2, path)
    assert (await p2.open()).outcome is RestoreOutcome.RESTORED
    assert r2.get_query_data(("todo", "9")) == {"title": "new"}
    await p2.close()


def truncate(path: Path) -> None:
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.truncate(size // 2)


def random_bytes(path: Path) -> None:
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    path.write_bytes(random.Random(7).randbytes(8192))


def tamper_update_rows(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("UPDATE snapshots SET data = X'01020304' WHERE doc_id != ?", (META_DOC,))
    conn.execute("UPDATE updates SET data = X'01020304' WHERE doc_id != ?", (META_DOC,))
    conn.commit()
    conn.close()


def tamper_with_valid_crc(path: Path) -> None:
    bad = b"\xff\xff\xff\xff\x00"
    conn = sqlite3.connect(path)
    for table in ("snapshots", "updates"):
        conn.execute(f"UPDATE {table} SET data = ?, crc = ?", (bad, zlib.crc32(bad)))
    conn.commit()
    conn.close()


def tamper_meta(path: Path) -> None:
    from pycrdt import Doc, Map

    doc: Any = Doc()
    doc.get("m", type=Map)["b"] = b"\x93garbage"
    bad = doc.get_update()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE snapshots SET data = ?, crc = ? WHERE doc_id = ?", (bad, zlib.crc32(bad), META_DOC))
    conn.execute("DELETE FROM updates WHERE doc_id = ?", (META_DOC,))
    conn.commit()
    conn.close()


@pytest.mark.parametrize("damage", [truncate, random_bytes, tamper_update_rows, tamper_with_valid_crc, tamper_meta])
async def test_corrupt_file_starts_clean_with_a_warning(tmp_path: Path, damage: Any,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    await corrupt_then_open(tmp_path / "cache.db", damage, caplog)


async def test_foreign_sqlite_file_without_metadata_is_discarded(tmp_path: Path) -> None:
    from crdtsync.storage import SQLiteStore

    path = tmp_path / "foreign.db"
    store = SQLiteStore(path)
    other = Replica()
    other.write(("x", "1"), 1)
    await store.append("x", other.get_update("x"))
    await store.close()
    r = Replica()
    p = ReplicaPersister(r, path)
    assert (await p.open()).outcome is RestoreOutcome.BUSTED
    assert not r.has_doc("x")
    await p.close()


async def test_unwritable_location_disables_persistence(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where a directory should be")
    replica = Replica()
    p = ReplicaPersister(replica, blocker / "cache.db")
    report = await p.open()
    assert report.outcome is RestoreOutcome.DISABLED
    replica.write(("k", "v"), 1)  # the app keeps running
    await p.flush()
    await p.close()


def test_invalid_options() -> None:
    with pytest.raises(ValueError):
        ReplicaPersister(Replica(), "x.db", throttle=-1)
    with pytest.raises(ValueError):
        ReplicaPersister(Replica(), "x.db", max_age=0)


async def test_content_held_before_open_is_persisted(tmp_path: Path) -> None:
    r = Replica()
    r.write(("doc", "list"), {"a": 1})  # hydrated or synced before the persister opened
    p = ReplicaPersister(r, tmp_path / "c.db", throttle=0.01)
    await p.open()
    r.write(("doc", "other"), 3)
    await p.close()
    r2 = Replica()
    p2 = ReplicaPersister(r2, tmp_path / "c.db")
    await p2.open()
    assert r2.read(("doc", "list")) == {"a": 1} and r2.read(("doc", "other")) == 3
    await p2.close()
