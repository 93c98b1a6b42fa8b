"""An unexpected error while compacting must not kill the SQLite writer thread."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from pycrdt import Doc, Text

from crdtsync.storage import CompactionPolicy, SQLiteStore


async def test_unexpected_compaction_error_is_logged_and_writes_go_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = SQLiteStore(tmp_path / "s.db", policy=CompactionPolicy(max_log_updates=2, min_log_bytes=0))

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("unexpected bug in compaction")

    store._write_snapshot = broken  # type: ignore[method-assign]
    d: Doc = Doc()
    t = d.get("t", type=Text)
    ups: list[bytes] = []
    d.observe(lambda ev: ups.append(bytes(ev.update)))
    for ch in "abcd":
        t += ch
    for u in ups:
        await asyncio.wait_for(store.append("doc", u), 5)  # compaction is due from the 2nd on
    state = await asyncio.wait_for(store.load("doc"), 5)
    assert state is not None
    r: Doc = Doc()
    r.apply_update(state)
    assert str(r.get("t", type=Text)) == "abcd"
    assert "compaction of 'doc' failed unexpectedly" in caplog.text
    await asyncio.wait_for(store.close(), 5)
