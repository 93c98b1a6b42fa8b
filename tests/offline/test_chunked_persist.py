"""Chunked array writes (commit points, merged per-flush updates) as persistence, storage,
dehydrate/hydrate and the local channel consume them: a long write is stored and read back
exactly after a restart, compacts fine, and local-channel peers (in-process and real
processes) converge."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from pycrdt import Doc, Map

from crdtsync import FakeClock, QueryClient
from crdtsync.offline import LocalChannel, ReplicaPersister, RestoreOutcome
from crdtsync.offline.dehydrate import dehydrate, hydrate
from crdtsync.origins import REMOTE
from crdtsync.replica import Replica
from crdtsync.storage import CompactionPolicy, SQLiteStore
from crdtsync.testing.waiting import until_value as until

pytestmark = pytest.mark.timeout(30)

DOC = "todos"
IDS = [f"id-{i:05d}" for i in range(10_000)]




async def restarted(path: Path, clock: FakeClock) -> tuple[Replica, ReplicaPersister]:
    r = Replica()
    p = ReplicaPersister(r, path, clock=clock)
    assert (await p.open()).outcome is RestoreOutcome.RESTORED
    return r, p


# -- ReplicaPersister --------------------------------------------------------------------------


async def test_a_10000_id_write_is_persisted_and_read_back_after_a_restart(tmp_path: Path) -> None:
    clock = FakeClock()
    replica = Replica()
    p = ReplicaPersister(replica, tmp_path / "c.db", throttle=1.0, clock=clock)
    await p.open()
    base = p.appends
    replica.write((DOC, "ids"), IDS)
    assert p.pending_updates == 1  # the chunked write reached the persister as one update
    await clock.advance(1.0)
    await p.wait_flushed()
    assert p.appends == base + 1
    await p.close()
    r2, p2 = await restarted(tmp_path / "c.db", clock)
    assert r2.read((DOC, "ids")) == IDS
    assert r2.state_vector(DOC) == replica.state_vector(DOC)
    await p2.close()


async def test_mixed_long_writes_remote_updates_and_rewrites_survive_restarts(tmp_path: Path) -> None:
    clock = FakeClock()
    replica = Replica()
    p = ReplicaPersister(replica, tmp_path / "c.db", throttle=1.0, clock=clock)
    await p.open()
    peer = Replica()
    peer.write((DOC, "peer"), IDS[:777])
    with replica.batch():
        replica.write((DOC, "ids"), IDS[:4000])
        replica.write(("other", "ids"), IDS[4000:4100])
        replica.apply_update(DOC, peer.get_update(DOC), origin=REMOTE)  # another origin in between
        replica.write((DOC, "ids"), IDS[:4000][::-1])
    replica.write((DOC, "tail"), IDS[:49])  # one chunk plus one item
    await clock.advance(1.0)
    await p.wait_flushed()
    replica.write((DOC, "ids"), IDS[100:2100])  # a rewrite after a flush: appended to the log
    await p.close()
    r2, p2 = await restarted(tmp_path / "c.db", clock)
    for key in ((DOC, "ids"), (DOC, "peer"), (DOC, "tail"), ("other", "ids")):
        assert r2.read(key) == replica.read(key), key
    assert r2.read((DOC, "ids")) == IDS[100:2100]
    await p2.compact()
    await p2.close()
    r3, p3 = await restarted(tmp_path / "c.db", clock)
    assert r3.read((DOC, "ids")) == IDS[100:2100] and r3.read((DOC, "peer")) == IDS[:777]
    await p3.close()


# -- SQLiteStore fed by on_update ----------------------------------------------------------------


async def test_sqlite_store_compacts_merged_long_updates(tmp_path: Path) -> None:
    replica = Replica()
    got: list[bytes] = []
    replica.on_update(lambda d, u, o: got.append(u) if d == DOC else None)
    store = SQLiteStore(tmp_path / "s.db", policy=CompactionPolicy(max_log_updates=4, min_log_bytes=0,
                                                                   log_ratio=100.0))
    try:
        for i in range(10):
            got.clear()
            replica.write((DOC, "ids"), IDS[i * 300:(i + 3) * 300] if i % 2 else IDS[:1000 + i])
            assert len(got) == 1  # one update per write, whatever its length
            await store.append(DOC, got[0])
        assert store.compactions >= 2
        stat = await store.stat(DOC)
        assert stat is not None and stat.log_updates < 4
        state = await store.load(DOC)
        assert state is not None
        d: Doc[Any] = Doc()
        d.apply_update(state)
        assert replica.read((DOC, "ids")) == IDS[2700:3600]  # the last write (i = 9)
        assert d.get("root", type=Map[Any]).to_py() == {"ids": IDS[2700:3600]}
    finally:
        await store.close()


# -- dehydrate / hydrate -------------------------------------------------------------------------


async def test_dehydrated_long_list_hydrates_exactly_and_merges(tmp_path: Path) -> None:
    src = QueryClient(clock=FakeClock())
    dst = QueryClient(clock=FakeClock())
    try:
        src.set_query_data((DOC, "ids"), IDS)
        dst.set_query_data((DOC, "mine"), IDS[:50])
        report = hydrate(dst, dehydrate(src))
        assert report.docs == 1
        assert dst.replica.read((DOC, "ids")) == IDS
        assert dst.replica.read((DOC, "mine")) == IDS[:50]  # merged, not overwritten
    finally:
        await src.close()
        await dst.close()


# -- LocalChannel ------------------------------------------------------------------------------


async def test_local_channel_peers_converge_on_long_writes(tmp_path: Path) -> None:
    ra, rb = Replica(), Replica()
    ra.write((DOC, "before"), IDS[:3000])  # held before the channel starts: catch-up
    a = LocalChannel("chunks", ra, base_dir=tmp_path)
    b = LocalChannel("chunks", rb, base_dir=tmp_path)
    try:
        await a.start()
        await a.wait_ready(5)
        await b.start()
        await b.wait_ready(5)
        assert rb.read((DOC, "before")) == IDS[:3000]
        rb.write((DOC, "ids"), IDS)  # the follower writes: through the leader's hub
        await until(ra, (DOC, "ids"), IDS)
        ra.write((DOC, "ids"), IDS[::-1][:5000])
        rb.write((DOC, "more"), IDS[:97])  # concurrent, other key
        await until(rb, (DOC, "ids"), IDS[::-1][:5000])
        await until(ra, (DOC, "more"), IDS[:97])
        assert ra.state_vector(DOC) == rb.state_vector(DOC)
    finally:
        await b.close()
        await a.close()


async def test_real_processes_converge_on_a_long_write(tmp_path: Path) -> None:
    """4,000 ids (83 chunks): tests/offline/worker.py reads its commands with the default 64 KiB
    StreamReader line limit, so a 10,000-id command line (about 130 KB of JSON) cannot be sent."""
    from tests.offline.procs import Proc

    ids = IDS[:4000]
    base = tmp_path / "chan"
    p1 = await Proc.start("p1", channel="chunks", base=base, db=tmp_path / "p1.db")
    p2 = await Proc.start("p2", channel="chunks", base=base, db=tmp_path / "p2.db")
    try:
        await p1.call("write", key=[DOC, "ids"], value=ids)
        await p2.wait([DOC, "ids"], ids)
        await p2.call("write", key=[DOC, "ids"], value=ids[::-1])
        await p1.wait([DOC, "ids"], ids[::-1])
    finally:
        for p in (p1, p2):
            await p.exit()


async def test_local_channel_write_larger_than_max_frame_converges_without_a_reconnect_storm(tmp_path: Path) -> None:
    import logging

    from crdtsync.offline import ChannelLimits

    closes = asyncio.Event()
    count = 0

    class Count(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            nonlocal count
            if "too_large" in record.getMessage():
                count += 1
                if count >= 6:
                    closes.set()

    handler = Count()
    logger = logging.getLogger("crdtsync.offline")
    logger.addHandler(handler)
    limits = ChannelLimits(max_frame=64 << 10)  # 10,000 ids are about 100 KB as one update
    ra, rb = Replica(), Replica()
    a = LocalChannel("big", ra, base_dir=tmp_path, limits=limits)
    b = LocalChannel("big", rb, base_dir=tmp_path, limits=limits)
    try:
        await a.start()
        await a.wait_ready(5)
        await b.start()
        await b.wait_ready(5)
        converged = asyncio.ensure_future(until(ra, (DOC, "ids"), IDS, timeout=5))
        rb.write((DOC, "ids"), IDS)
        storm = asyncio.ensure_future(closes.wait())
        await asyncio.wait({converged, storm}, timeout=5, return_when=asyncio.FIRST_COMPLETED)
        storm.cancel()
        converged.cancel()
        assert count < 6, f"{count} too_large reports over one write"
        assert ra.read((DOC, "ids")) == IDS
    finally:
        logger.removeHandler(handler)
        await b.close()
        await a.close()
