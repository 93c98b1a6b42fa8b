import asyncio
import sqlite3
from pathlib import Path

import pytest
from pycrdt import Doc, Map, Text

from crdtsync.errors import CorruptStoreError, StorageError
from crdtsync.storage import CompactionPolicy, SQLiteStore, open_store
from crdtsync.storage.memory import MemoryStore


def _updates(n: int, *, client_id: int = 1) -> tuple[Doc, list[bytes]]:
    doc: Doc = Doc(client_id=client_id)
    out: list[bytes] = []
    doc.observe(lambda ev: out.append(bytes(ev.update)))
    m = doc.get("m", type=Map)
    for i in range(n):
        m[f"k{i % 50}"] = f"value {i}"
    return doc, out


def _map(state: bytes | None) -> dict[str, object]:
    assert state is not None
    d: Doc = Doc()
    d.apply_update(state)
    return d.get("m", type=Map).to_py()


async def test_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    doc, ups = _updates(300)
    store = SQLiteStore(path)
    await asyncio.gather(*(store.append("d", u) for u in ups))
    await store.close()
    store = SQLiteStore(path)
    assert _map(await store.load("d")) == doc.get("m", type=Map).to_py()
    await store.close()


async def test_group_commit_batches_concurrent_appends(tmp_path: Path) -> None:
    _, ups = _updates(1000)
    store = SQLiteStore(tmp_path / "s.db", policy=CompactionPolicy(max_log_updates=10**6))
    await asyncio.gather(*(store.append("d", u) for u in ups))
    # 1,000 appends issued together commit in a few transactions, not 1,000
    assert 1 <= store.commits <= 20, store.commits
    await store.close()


async def test_max_batch_is_respected(tmp_path: Path) -> None:
    _, ups = _updates(100)
    store = SQLiteStore(tmp_path / "s.db", max_batch=10)
    await asyncio.gather(*(store.append("d", u) for u in ups))
    assert store.commits >= 10
    await store.close()
    with pytest.raises(ValueError):
        SQLiteStore(tmp_path / "t.db", max_batch=0)


async def test_compaction_by_count(tmp_path: Path) -> None:
    doc, ups = _updates(95)
    store = SQLiteStore(tmp_path / "s.db", policy=CompactionPolicy(max_log_updates=10, max_log_bytes=10**9))
    for u in ups:
        await store.append("d", u)
    stat = await store.stat("d")
    assert stat is not None
    assert stat.log_updates < 10
    assert store.compactions == 9
    assert _map(await store.load("d")) == doc.get("m", type=Map).to_py()
    await store.close()


async def test_compaction_by_bytes(tmp_path: Path) -> None:
    doc: Doc = Doc()
    ups: list[bytes] = []
    doc.observe(lambda ev: ups.append(bytes(ev.update)))
    t = doc.get("t", type=Text)
    for _ in range(30):
        t += "x" * 1000
    store = SQLiteStore(
        tmp_path / "s.db", policy=CompactionPolicy(max_log_updates=10**6, max_log_bytes=5000, log_ratio=1e9)
    )
    for u in ups:
        await store.append("d", u)
    stat = await store.stat("d")
    assert stat is not None and stat.log_bytes < 5000
    assert store.compactions >= 5
    await store.close()


async def test_compaction_by_ratio_to_snapshot(tmp_path: Path) -> None:
    policy = CompactionPolicy(max_log_updates=10**6, max_log_bytes=10**9, log_ratio=0.5, min_log_bytes=100)
    assert policy.due(snapshot_bytes=1000, log_updates=3, log_bytes=600)
    assert not policy.due(snapshot_bytes=1000, log_updates=3, log_bytes=400)
    assert not policy.due(snapshot_bytes=0, log_updates=3, log_bytes=50)  # under min_log_bytes
    assert not policy.due(snapshot_bytes=0, log_updates=0, log_bytes=0)
    for bad in ({"max_log_updates": 0}, {"log_ratio": 0}, {"min_log_bytes": -1}):
        with pytest.raises(ValueError):
            CompactionPolicy(**bad)  # type: ignore[arg-type]


async def test_file_stays_within_small_factor_of_doc(tmp_path: Path) -> None:
    """A hot document rewritten 20,000 times: the file tracks the document, not the history."""
    path = tmp_path / "s.db"
    doc: Doc = Doc()
    ups: list[bytes] = []
    doc.observe(lambda ev: ups.append(bytes(ev.update)))
    m = doc.get("m", type=Map)
    t = doc.get("t", type=Text)
    t += "base text " * 2000
    store = SQLiteStore(path)
    history = 0
    for round_ in range(40):
        for i in range(500):
            m[f"key{i % 200}"] = f"round {round_} value {i} " * 3
        history += sum(map(len, ups))
        await asyncio.gather(*(store.append("d", u) for u in ups))
        ups.clear()
    encoded = len(doc.get_update())
    size = store.total_size()
    await store.close()
    print("history", history, "encoded", encoded, "file", size)
    assert history > 5 * encoded  # the raw history is much larger than the document
    assert size < 4 * encoded + 64 * 1024, (size, encoded)


async def test_corrupt_row_detected_and_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    _, ups = _updates(20)
    store = SQLiteStore(path)
    for u in ups:
        await store.append("d", u)
    await store.append("other", ups[0])
    await store.close()
    with sqlite3.connect(path) as conn:  # flip bits in one stored update
        conn.execute("UPDATE updates SET data = X'DEADBEEF' WHERE id = (SELECT MIN(id) FROM updates)")
    with sqlite3.connect(path) as conn:
        before = conn.execute("SELECT id, data FROM updates ORDER BY id").fetchall()
    store = SQLiteStore(path, policy=CompactionPolicy(max_log_updates=1))
    with pytest.raises(CorruptStoreError):
        await store.load("d")
    with pytest.raises(CorruptStoreError):
        await store.append("d", ups[0])
    with pytest.raises(CorruptStoreError):
        await store.replace("d", ups[0])
    assert _map(await store.load("other")) == {"k0": "value 0"}  # other docs unaffected
    await store.close()
    with sqlite3.connect(path) as conn:
        after = conn.execute("SELECT id, data FROM updates WHERE doc_id = 'd' ORDER BY id").fetchall()
    assert after == [row for row in before if row in after] and after[0] == before[0]
    assert len(after) == len(ups)


async def test_undecodable_but_checksummed_bytes_are_corrupt(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    await store.append("d", b"\xff\xff\xff garbage")
    with pytest.raises(CorruptStoreError):
        await store.load("d")
    with pytest.raises(CorruptStoreError):
        await store.append("d", b"\x00\x00")
    await store.delete("d")  # an operator may delete it explicitly
    await store.append("d", b"\x00\x00")
    await store.close()


async def test_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(CorruptStoreError):
        SQLiteStore(path)
    assert path.read_bytes() == b"this is not sqlite" * 100


async def test_unopenable_path(tmp_path: Path) -> None:
    with pytest.raises(StorageError):
        SQLiteStore(tmp_path / "missing-dir" / "s.db")


async def test_close_twice_and_use_after_close(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    await store.close()
    await store.close()
    with pytest.raises(StorageError):
        await store.append("d", b"\x00\x00")


async def test_stat_and_size(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    assert await store.stat("d") is None
    _, ups = _updates(3)
    for u in ups:
        await store.append("d", u)
    stat = await store.stat("d")
    assert stat is not None and stat.log_updates == 3 and stat.log_bytes == sum(map(len, ups))
    assert stat.total_bytes == stat.log_bytes
    assert store.total_size() > 0
    await store.close()


def test_open_store_spec(tmp_path: Path) -> None:
    assert isinstance(open_store("memory:"), MemoryStore)
    s = open_store(tmp_path / "x.db")
    assert isinstance(s, SQLiteStore)
    asyncio.run(s.close())
