"""Stock Yjs clients and crdtsync peers in ONE room of the real relay.

The relay runs as ``python -m crdtsync relay --port 0 --store <tmp sqlite>``. In the room:
two Node clients (npm ``yjs`` 13 + ``y-websocket`` 3 + ``ws``, ``benchmarks/node/ypeer.js``),
a crdtsync :class:`~crdtsync.sync.SyncProvider` on the native endpoint and a Python
y-websocket speaker. Map keys and a ``Y.Text`` with non-ASCII text written on each side reach
every other side; a Node client's awareness reaches everyone and is removed from everyone when
it disconnects; the store holds the merged document after SIGTERM.

Node and npm are required: without them the test fails with a clear message (CI has them).
Every wait is on a reported condition with a timeout; nothing sleeps.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from pycrdt import Doc, Map, Text

from crdtsync import Replica
from crdtsync.relay import NATIVE_PATH
from crdtsync.storage import SQLiteStore
from crdtsync.sync import Backoff, SyncProvider
from tests.relay.clients import YClient

from .node import NodePeer, ensure_node_modules

ROOM = "interop/Ω-room"  # non-ASCII room name: URL-encoded by y-websocket, decoded by the relay
TIMEOUT = 15.0


@asynccontextmanager
async def relay_process(store: Path) -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "crdtsync", "relay", "--port", "0", "--store", str(store),
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stderr is not None
    try:
        url = None
        while url is None:
            line = await asyncio.wait_for(proc.stderr.readline(), 20)
            assert line, "relay exited before listening"
            rec = json.loads(line)
            url = rec.get("url") if rec.get("msg") == "relay listening" else None
        yield proc, url
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


class PyWatch:
    """Wakes on every change of a Replica document or of a provider's awareness."""

    def __init__(self) -> None:
        self.changed = asyncio.Event()

    def poke(self, *_: Any) -> None:
        self.changed.set()

    async def until(self, predicate: Callable[[], bool], what: str) -> None:
        try:
            async with asyncio.timeout(TIMEOUT):
                while not predicate():
                    await self.changed.wait()
                    self.changed.clear()
        except TimeoutError:
            raise AssertionError(f"python peer: timed out waiting for {what}") from None


async def test_node_yjs_clients_and_python_peers_share_one_room(tmp_path: Path) -> None:
    ensure_node_modules()
    store_path = tmp_path / "relay.sqlite3"
    async with relay_process(store_path) as (relay, url):
        replica = Replica()
        provider = SyncProvider(replica, url + NATIVE_PATH, backoff=Backoff(initial=0.05, maximum=0.5))
        watch = PyWatch()
        replica.on_update(watch.poke)
        provider.subscribe(ROOM)
        await provider.start()
        aw = provider.awareness(ROOM)
        aw.on_change(watch.poke)
        node1 = await NodePeer.start(url, ROOM, "node1")
        node2 = await NodePeer.start(url, ROOM, "node2")
        yclient = await YClient.open(f"{url}/{ROOM.replace('Ω', '%CE%A9')}")
        try:
            async with asyncio.timeout(TIMEOUT):
                await provider.wait_synced(ROOM)
            await node1.wait_for(lambda: node1.synced, "sync")
            await node2.wait_for(lambda: node2.synced, "sync")

            # --- map keys from every side reach every other side
            node1.command(op="set", key="from_node1", value="née ✓ 1")
            node2.command(op="set", key="from_node2", value={"nested": ["ü", 2]})
            replica.write((ROOM, "from_python"), "Zoë 🐍")
            yclient.doc.get("root", type=Map)["from_yws"] = "ça va"
            expected_map = {
                "from_node1": "née ✓ 1",
                "from_node2": {"nested": ["ü", 2]},
                "from_python": "Zoë 🐍",
                "from_yws": "ça va",
            }

            def py_map() -> dict[str, Any]:
                return dict(replica.doc(ROOM).get("root", type=Map).to_py() or {})

            def same_map(got: dict[str, Any]) -> bool:  # pycrdt reads JSON numbers as floats
                return got == expected_map or json.dumps(got, sort_keys=True) == json.dumps(
                    {**expected_map, "from_node2": {"nested": ["ü", 2.0]}}, sort_keys=True
                )

            await node1.wait_for(lambda: node1.map == expected_map, "all map keys")
            await node2.wait_for(lambda: node2.map == expected_map, "all map keys")
            await watch.until(lambda: same_map(py_map()), "all map keys")
            await yclient.wait_for(
                lambda: same_map(yclient.doc.get("root", type=Map).to_py() or {}), timeout=TIMEOUT
            )

            # --- Y.Text with non-ASCII text, appended in turn from each side
            node1.command(op="text_append", text="Grüße ")
            await node2.wait_for(lambda: node2.text == "Grüße ", "node1's text")
            node2.command(op="text_append", text="🌍 ")
            await watch.until(lambda: str(replica.doc(ROOM).get("t", type=Text)) == "Grüße 🌍 ", "node text")
            with replica.edit(ROOM):  # one transaction, seen by the provider's on_update
                py_text = replica.doc(ROOM).get("t", type=Text)
                py_text += "日本語 "  # pycrdt appends at the UTF-8 byte length
            await yclient.wait_for(lambda: str(yclient.t) == "Grüße 🌍 日本語 ", timeout=TIMEOUT)
            y_text = yclient.t
            y_text += "ñ"
            final_text = "Grüße 🌍 日本語 ñ"
            for peer in (node1, node2):
                await peer.wait_for(lambda peer=peer: peer.text == final_text, "the final text")
            await watch.until(lambda: str(replica.doc(ROOM).get("t", type=Text)) == final_text, "final text")

            # --- awareness: a Node client's state reaches every other side ...
            node1.command(op="awareness", state={"user": "Ñode ✓ 1", "cursor": 3})
            await node1.wait_for(lambda: node1.client_id is not None, "its client id")
            n1 = node1.client_id
            assert n1 is not None
            want = {"user": "Ñode ✓ 1", "cursor": 3}
            await node2.wait_for(lambda: node2.awareness.get(n1) == want, "node1's awareness")
            await watch.until(lambda: aw.states.get(n1) == want, "node1's awareness")
            await yclient.wait_for(lambda: yclient.awareness.get(n1) == want, timeout=TIMEOUT)
            # ... and the Python peer's presence reaches the Node clients
            aw.set_local_state({"user": "Zoë (python)"})
            py_id = aw.client_id
            await node2.wait_for(lambda: node2.awareness.get(py_id) == {"user": "Zoë (python)"}, "python's awareness")
            await node1.wait_for(lambda: node1.awareness.get(py_id) == {"user": "Zoë (python)"}, "python's awareness")

            # ... and is removed from everyone when node1 disconnects
            await node1.exit()
            await node2.wait_for(lambda: n1 not in node2.awareness, "node1's awareness removed")
            await watch.until(lambda: n1 not in aw.states, "node1's awareness removed")
            await yclient.wait_for(lambda: n1 not in yclient.awareness, timeout=TIMEOUT)
            assert node2.awareness.get(py_id) == {"user": "Zoë (python)"}
            assert not node1.errors and not node2.errors

            async with asyncio.timeout(TIMEOUT):
                await provider.wait_acked()
        finally:
            await provider.close()
            await yclient.close()
            for peer in (node1, node2):
                await peer.exit()
        relay.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(relay.wait(), 20) == 0

    # the relay stored the merged document (every side's edits)
    store = SQLiteStore(store_path)
    try:
        state = await store.load(ROOM)
    finally:
        await store.close()
    assert state is not None
    stored: Doc = Doc()
    stored.apply_update(state)
    assert str(stored.get("t", type=Text)) == final_text
    assert set(stored.get("root", type=Map).to_py() or {}) == set(expected_map)
