"""The relay cuts what it sends to the message-size limit each native client announces in its
Hello: a room's state and forwarded updates larger than a client's limit arrive as several
frames instead of one the client refuses (and reconnects over, again and again). A value that
cannot be cut gives that client a non-fatal ``too_large`` error for the document.

Real relay on loopback, real SyncProviders. No sleeps: every wait is on an event with a timeout,
and a dropped connection ends the wait at once (it is what the missing feature looks like)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from websockets.asyncio.client import connect

from crdtsync import Replica
from crdtsync.errors import RemoteError
from crdtsync.protocol import native
from crdtsync.protocol import split as split_module
from crdtsync.protocol.native import ErrorCode
from crdtsync.protocol.split import announced_limit as client_limit
from crdtsync.protocol.split import split_update
from crdtsync.relay import NATIVE_PATH, Relay, RelayConfig, mint_token
from crdtsync.sync import Backoff, SyncProvider
from crdtsync.sync.status import ConnectionState, SyncStatus

from .clients import NClient

SECRET = b"outgoing-split-secret-0123456789"
DOC = "todos"
OTHER = "notes"
IDS = [f"id-{i:05d}" for i in range(10_000)]  # about 100 KB as one update
SMALL = 16 * 1024
TIMEOUT = 10


class Client:
    """A SyncProvider plus what the tests watch: connection drops (entries into OFFLINE) and
    the last error, each signalled through one event."""

    def __init__(self, relay: Relay, **kwargs: Any) -> None:
        tok = mint_token(SECRET, "t", [("*", "write")], expires=time.time() + 3600)
        self.p = SyncProvider(Replica(), relay.url + NATIVE_PATH, token=tok,
                              backoff=Backoff(initial=0.01, maximum=0.05), **kwargs)
        self.drops = 0
        self.errors: list[BaseException] = []
        self.changed = asyncio.Event()
        self._state = ConnectionState.IDLE
        self.p.on_status(self._on_status)

    def _on_status(self, s: SyncStatus) -> None:
        if s.state is ConnectionState.OFFLINE and self._state is not ConnectionState.OFFLINE:
            self.drops += 1
        self._state = s.state
        if s.last_error is not None and (not self.errors or self.errors[-1] is not s.last_error):
            self.errors.append(s.last_error)
        self.changed.set()

    async def until(self, predicate: Callable[[], bool], *docs: str) -> None:
        """Until ``predicate()``; fails at once if the connection drops."""
        stops = [self.p.replica.watch(d, (), lambda _o: self.changed.set()) for d in docs]
        try:
            async with asyncio.timeout(TIMEOUT):
                while not predicate():
                    assert self.drops == 0, f"the connection dropped {self.drops} times: {self.errors}"
                    await self.changed.wait()
                    self.changed.clear()
        finally:
            for stop in stops:
                stop()
        assert self.drops == 0, f"the connection dropped {self.drops} times: {self.errors}"

    async def synced(self, doc_id: str) -> None:
        await self.until(lambda: self.p.is_synced(doc_id))

    def too_large(self, doc_id: str) -> bool:
        """A ``too_large`` error about ``doc_id`` arrived (the status carries the error; its
        message names the document)."""
        return any(isinstance(e, RemoteError) and e.code == ErrorCode.TOO_LARGE and repr(doc_id) in e.message
                   for e in self.errors)


@pytest.fixture
async def relay() -> AsyncIterator[Relay]:
    async with Relay(RelayConfig(port=0, secret=SECRET)) as r:
        yield r


@pytest.fixture
async def clients(relay: Relay) -> AsyncIterator[Callable[..., Any]]:
    made: list[Client] = []

    async def make(*docs: str, **kwargs: Any) -> Client:
        c = Client(relay, **kwargs)
        made.append(c)
        for d in docs:
            c.p.subscribe(d)
        await c.p.start()
        return c

    try:
        yield make
    finally:
        for c in made:
            await c.p.close()


async def test_a_room_state_larger_than_the_clients_limit_arrives_in_parts(clients: Callable[..., Any]) -> None:
    a = await clients(DOC)
    await a.synced(DOC)
    a.p.replica.write((DOC, "ids"), IDS)
    async with asyncio.timeout(TIMEOUT):
        await a.p.wait_acked()
    assert len(a.p.replica.get_update(DOC, b"\x00")) > 4 * SMALL

    b = await clients(DOC, max_message_size=SMALL)
    await b.synced(DOC)
    # synced means all of it: the parts come before the SyncStep2 that carries the last one
    assert b.p.replica.read((DOC, "ids")) == IDS
    assert b.drops == 0 and b.errors == []


async def test_a_forwarded_update_larger_than_the_clients_limit_arrives_in_parts(
        clients: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:
    cuts: list[int] = []

    def counting_split(update: bytes, limit: int) -> list[bytes]:
        cuts.append(limit)
        return split_update(update, limit)

    # every cut goes through crdtsync.protocol.split (the provider's too: a's 100 KB fits the relay)
    monkeypatch.setattr(split_module, "split_update", counting_split)
    a = await clients(DOC)
    bs = [await clients(DOC, max_message_size=SMALL) for _ in range(2)]
    for c in (a, *bs):
        await c.synced(DOC)
    a.p.replica.write((DOC, "ids"), IDS)  # one Update of about 100 KB, under the relay's 4 MiB
    for b in bs:
        await b.until(lambda b=b: b.p.replica.read((DOC, "ids")) == IDS, DOC)
    assert len(cuts) == 1  # cut once, shared by both members with that limit
    # the connection still works both ways afterwards
    bs[0].p.replica.write((DOC, "done"), True)
    await a.until(lambda: a.p.replica.read((DOC, "done")) is True, DOC)
    for b in bs:
        assert b.drops == 0 and b.errors == []


async def test_a_value_that_cannot_be_cut_is_a_non_fatal_error_not_a_reconnect_storm(
        clients: Callable[..., Any]) -> None:
    a = await clients(DOC, OTHER)
    await a.synced(DOC)
    a.p.replica.write((DOC, "blob"), "x" * 40_000)  # one value, larger than B's 16 KB
    async with asyncio.timeout(TIMEOUT):
        await a.p.wait_acked()

    b = await clients(DOC, OTHER, max_message_size=SMALL)
    await b.until(lambda b=b: b.too_large(DOC))
    assert not b.p.is_synced(DOC)  # it is missing that state, and not told otherwise
    # the connection lives on: other documents and later small updates still arrive
    await b.synced(OTHER)
    a.p.replica.write((OTHER, "n"), "hello")
    await b.until(lambda b=b: b.p.replica.read((OTHER, "n")) == "hello", OTHER)
    assert b.drops == 0


async def test_a_forwarded_value_that_cannot_be_cut_is_a_non_fatal_error(clients: Callable[..., Any]) -> None:
    a = await clients(DOC)
    bs = [await clients(DOC, max_message_size=SMALL) for _ in range(2)]
    big = await clients(DOC)  # the default limit: receives it whole
    for c in (a, big, *bs):
        await c.synced(DOC)
    a.p.replica.write((DOC, "blob"), "x" * 40_000)
    for b in bs:  # each member with the small limit is told, also from the cached verdict
        await b.until(lambda b=b: b.too_large(DOC))
    await big.until(lambda: big.p.replica.read((DOC, "blob")) == "x" * 40_000, DOC)
    a.p.replica.write((DOC, "n"), "after")
    for b in bs:
        await b.until(lambda b=b: b.p.replica.read((DOC, "n")) == "after", DOC)
        assert b.drops == 0
    assert big.errors == []


class SizedClient(NClient):
    """A raw native client that announces ``max_message_size`` in its Hello and records every
    frame's size and message, in order (its socket itself accepts any size)."""

    sizes: list[int]

    @classmethod
    async def open_with_limit(cls, url: str, token: str, limit: int) -> SizedClient:
        self = cls()
        self.sizes = []
        self.ws = await connect(url, compression=None, max_size=None)
        self._start()
        self.conn.send_hello(token=token, client={"max_message_size": limit})
        self._flush()
        await self.wait_for(lambda: self.welcome or self.closed.done())
        return self

    def on_frame(self, frame: bytes) -> None:
        self.sizes.append(len(frame))
        super().on_frame(frame)


async def test_every_frame_fits_and_a_state_answer_ends_with_its_sync_step2(
        relay: Relay, clients: Callable[..., Any]) -> None:
    a = await clients(DOC)
    await a.synced(DOC)
    a.p.replica.write((DOC, "ids"), IDS)
    async with asyncio.timeout(TIMEOUT):
        await a.p.wait_acked()
    tok = mint_token(SECRET, "t", [("*", "write")], expires=time.time() + 3600)
    c = await SizedClient.open_with_limit(relay.url + NATIVE_PATH, tok, SMALL)
    try:
        c.doc_id = DOC
        await c.subscribe(DOC)  # answered with Update parts, then the SyncStep2
        c.send(native.SyncStep1(DOC, b"\x00"))  # asks for the whole state again
        await c.wait_for(lambda: sum(isinstance(m, native.SyncStep2) for m in c.received) == 2)
        docs = [m for m in c.received if isinstance(m, (native.Update, native.SyncStep2))]
        for answer in (docs[:len(docs) // 2], docs[len(docs) // 2:]):
            assert len(answer) > 1
            assert [type(m) for m in answer] == [native.Update] * (len(answer) - 1) + [native.SyncStep2]
        assert max(c.sizes) <= SMALL
        copy = Replica()
        copy.apply_update(DOC, bytes(c.doc.get_update()))
        assert copy.read((DOC, "ids")) == IDS
        assert c.errors == []
    finally:
        await c.ws.close()


async def test_the_provider_announces_its_limit_and_keeps_the_callers_info(relay: Relay) -> None:
    c = Client(relay, max_message_size=SMALL, client_info={"app": "todo", "name": "mine"})
    assert c.p.client_info == {"name": "mine", "app": "todo", "max_message_size": SMALL}


@pytest.mark.parametrize("info, expected", [
    ({}, None),
    ({"max_message_size": SMALL}, SMALL),
    ({"max_message_size": 0}, None),
    ({"max_message_size": -5}, None),
    ({"max_message_size": True}, None),
    ({"max_message_size": 1.5}, None),
    ({"max_message_size": "16384"}, None),
    ({"max_message_size": None}, None),
])
def test_an_absent_or_invalid_announced_limit_means_no_cutting(info: dict[str, Any], expected: int | None) -> None:
    assert client_limit(info) == expected
