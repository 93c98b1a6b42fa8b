"""Durability across a crash (SIGKILL) and a graceful stop (SIGTERM), with the relay in a
subprocess speaking to real websocket clients."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from pycrdt import Doc, Map

from crdtsync.storage import SQLiteStore

from .clients import NClient, YClient


@asynccontextmanager
async def relay_process(store: Path, *args: str) -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "crdtsync", "relay", "--port", "0", "--store", str(store), *args,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stderr is not None
    url = None
    lines: list[str] = []
    try:
        while url is None:
            line = (await asyncio.wait_for(proc.stderr.readline(), 20)).decode()
            assert line, "relay exited early: " + "".join(lines)
            lines.append(line)
            with_url = json.loads(line)
            url = with_url.get("url") if with_url.get("msg") == "relay listening" else None
        yield proc, url
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def load_map(path: Path, doc_id: str) -> dict[str, object]:
    store = SQLiteStore(path)
    try:
        state = await store.load(doc_id)
    finally:
        await store.close()
    assert state is not None
    d: Doc = Doc()
    d.apply_update(state)
    return d.get("m", type=Map).to_py()


async def test_acked_updates_survive_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "relay.db"
    async with relay_process(path) as (proc, url):
        c = await NClient.open(f"{url}/v1", doc_id="doc")
        for i in range(50):
            c.m[f"k{i}"] = f"v{i}"
        await c.wait_for(lambda: c.acked.get("doc", 0) >= 50, timeout=10)
        proc.send_signal(signal.SIGKILL)  # a crash: no flush, no close
        await proc.wait()
    assert await load_map(path, "doc") == {f"k{i}": f"v{i}" for i in range(50)}


async def test_yjs_updates_durable_within_flush_delay(tmp_path: Path) -> None:
    path = tmp_path / "relay.db"
    async with relay_process(path, "--flush-delay", "0.5", "--log-level", "debug") as (proc, url):
        a = await YClient.open(f"{url}/doc")
        b = await YClient.open(f"{url}/doc")
        a.m["quiet"] = "second"
        await b.wait_for(lambda: b.m.get("quiet") == "second")
        # the relay logs "room flushed" once the store committed the batch: wait for that line
        await asyncio.wait_for(_flushed(proc, "doc"), 1.5)
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    assert (await load_map(path, "doc"))["quiet"] == "second"


async def _flushed(proc: asyncio.subprocess.Process, doc_id: str) -> None:
    assert proc.stderr is not None
    while line := await proc.stderr.readline():
        rec = json.loads(line)
        if rec.get("msg") == "room flushed" and rec.get("doc") == doc_id:
            return
    raise AssertionError("relay exited without flushing")


async def test_sigterm_flushes_every_room_and_exits_zero(tmp_path: Path) -> None:
    path = tmp_path / "relay.db"
    async with relay_process(path, "--flush-delay", "1.0") as (proc, url):
        writers = [await YClient.open(f"{url}/room{i}") for i in range(3)]
        readers = [await YClient.open(f"{url}/room{i}") for i in range(3)]
        for i, w in enumerate(writers):
            w.m["room"] = f"r{i}"
        for i, r in enumerate(readers):
            await r.wait_for(lambda r=r, i=i: r.m.get("room") == f"r{i}")
        proc.send_signal(signal.SIGTERM)  # well before the 1 s flush delay
        assert await asyncio.wait_for(proc.wait(), 20) == 0
        for cl in writers + readers:
            code, _ = await asyncio.wait_for(cl.closed, 5)
            assert code == 1001
    for i in range(3):
        assert (await load_map(path, f"room{i}"))["room"] == f"r{i}"
