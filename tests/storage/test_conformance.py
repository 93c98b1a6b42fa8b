from pathlib import Path

import pytest

from crdtsync.storage import CompactionPolicy, MemoryStore, SQLiteStore
from crdtsync.testing.storage_suite import CHECKS, check_storage


@pytest.mark.parametrize("check", list(CHECKS))
async def test_memory_store(check: str) -> None:
    await check_storage(MemoryStore, only=[check])


@pytest.mark.parametrize("check", list(CHECKS))
async def test_memory_store_compacting_often(check: str) -> None:
    await check_storage(lambda: MemoryStore(compact_every=3), only=[check])


@pytest.mark.parametrize("check", list(CHECKS))
async def test_sqlite_store(check: str, tmp_path: Path) -> None:
    counter = iter(range(1000))
    await check_storage(lambda: SQLiteStore(tmp_path / f"s{next(counter)}.db"), only=[check])


@pytest.mark.parametrize("check", list(CHECKS))
async def test_sqlite_store_compacting_often(check: str, tmp_path: Path) -> None:
    counter = iter(range(1000))
    policy = CompactionPolicy(max_log_updates=7, max_log_bytes=4096, min_log_bytes=0)
    await check_storage(lambda: SQLiteStore(tmp_path / f"s{next(counter)}.db", policy=policy), only=[check])


async def test_unknown_check_name_rejected() -> None:
    with pytest.raises(ValueError):
        await check_storage(MemoryStore, only=["nope"])
