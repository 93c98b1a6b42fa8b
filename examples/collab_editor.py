"""Two peers edit one shared document through a relay started right here.

Run: ``python examples/collab_editor.py``. It starts a relay on a free loopback port with a
temporary SQLite store, connects two y-websocket peers (pycrdt documents), lets both edit a
shared Text and Map concurrently, waits until they converge, prints the result and exits.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

from pycrdt import Doc, Map, Text
from websockets.asyncio.client import ClientConnection, connect

from crdtsync.protocol import yjs as y
from crdtsync.relay import Relay, RelayConfig
from crdtsync.storage import SQLiteStore


class Peer:
    """A tiny y-websocket peer: a pycrdt Doc wired to a websocket."""

    def __init__(self, name: str, ws: ClientConnection):
        self.name = name
        self.ws = ws
        self.doc: Doc[Any] = Doc()
        self.text = self.doc.get("text", type=Text)
        self.meta = self.doc.get("meta", type=Map)
        self.changed = asyncio.Event()
        self._remote = False
        self._out: asyncio.Queue[bytes] = asyncio.Queue()
        self.doc.observe(self._local_change)
        self.tasks = [asyncio.create_task(self._reader()), asyncio.create_task(self._writer())]

    def _local_change(self, event: Any) -> None:
        if not self._remote:
            self._out.put_nowait(y.encode_yjs(y.Update(bytes(event.update))))

    async def _writer(self) -> None:
        while True:
            await self.ws.send(await self._out.get())

    async def _reader(self) -> None:
        self._out.put_nowait(y.encode_yjs(y.SyncStep1(bytes(self.doc.get_state()))))
        async for frame in self.ws:
            msg = y.decode_yjs(frame if isinstance(frame, bytes) else frame.encode())
            if isinstance(msg, y.SyncStep1):
                self._out.put_nowait(y.encode_yjs(y.SyncStep2(bytes(self.doc.get_update(msg.state_vector)))))
            elif isinstance(msg, (y.SyncStep2, y.Update)):
                self._remote = True
                try:
                    self.doc.apply_update(msg.update)
                finally:
                    self._remote = False
                self.changed.set()

    async def close(self) -> None:
        for t in self.tasks:
            t.cancel()
        await self.ws.close()


async def until_equal(a: Peer, b: Peer, timeout: float = 5.0) -> None:
    async def loop() -> None:
        while a.doc.get_state() != b.doc.get_state():
            a.changed.clear()
            b.changed.clear()
            await asyncio.wait(
                [asyncio.create_task(a.changed.wait()), asyncio.create_task(b.changed.wait())],
                return_when=asyncio.FIRST_COMPLETED,
            )

    await asyncio.wait_for(loop(), timeout)


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore(Path(tmp) / "collab.sqlite3")
        async with Relay(RelayConfig(port=0), store) as relay:
            room = f"{relay.url}/notes%2Fshopping"
            alice = Peer("alice", await connect(room))
            bob = Peer("bob", await connect(room))

            alice.text.insert(0, "Shopping list:")
            alice.meta["owner"] = "alice"
            await until_equal(alice, bob)
            # concurrent edits on both sides
            alice.text += " milk,"
            bob.text += " bread,"
            bob.meta["status"] = "open"
            alice.meta["items"] = 2
            await until_equal(alice, bob)

            print("alice:", str(alice.text), alice.meta.to_py())
            print("bob:  ", str(bob.text), bob.meta.to_py())
            assert str(alice.text) == str(bob.text) and alice.meta.to_py() == bob.meta.to_py()
            await alice.close()
            await bob.close()
        # the relay flushed the room on stop: reopen the store and read it back
        store = SQLiteStore(Path(tmp) / "collab.sqlite3")
        state = await store.load("notes/shopping")
        await store.close()
        assert state is not None
        saved: Doc[Any] = Doc()
        saved.apply_update(state)
        print("stored:", str(saved.get("text", type=Text)))


if __name__ == "__main__":
    asyncio.run(main())
