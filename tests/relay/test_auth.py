"""Tokens, grants, and read-only enforcement for every message type on both endpoints."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycrdt import Doc, Map
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from crdtsync.errors import AuthError
from crdtsync.protocol import native as n
from crdtsync.protocol import yjs as y
from crdtsync.protocol.awareness import AwarenessEntry, encode_awareness, state_json
from crdtsync.relay import Access, Relay, RelayConfig, mint_token, verify_token
from crdtsync.relay.auth import authenticate
from crdtsync.storage import MemoryStore
from crdtsync.testing.waiting import until

from .clients import NClient, YClient

SECRET = b"0123456789abcdef-secret"


def test_mint_and_verify_round_trip() -> None:
    tok = mint_token(SECRET, "ana", [("notes/*", "write"), ("*", "read")], expires=2_000_000_000)
    claims = verify_token(SECRET, tok, now=1_000)
    assert claims.subject == "ana"
    assert claims.access("notes/a") is Access.WRITE
    assert claims.access("other") is Access.READ
    ro = verify_token(SECRET, mint_token(SECRET, "r", [("a?", "read")], expires=2e9), now=0)
    assert ro.access("ab") is Access.READ and ro.access("abc") is Access.NONE


@pytest.mark.parametrize(
    "token",
    ["", "abc", "a.b.c", "!!!.???", mint_token(b"another-secret-123456", "x", [("*", "write")], expires=2e9)],
)
def test_bad_tokens_rejected(token: str) -> None:
    with pytest.raises(AuthError):
        verify_token(SECRET, token, now=0)


def test_expired_and_tampered() -> None:
    tok = mint_token(SECRET, "x", [("*", "write")], expires=100)
    with pytest.raises(AuthError, match="expired"):
        verify_token(SECRET, tok, now=100)
    body, sig = tok.split(".")
    with pytest.raises(AuthError):
        verify_token(SECRET, body[:-2] + "AA." + sig, now=0)
    with pytest.raises(ValueError):
        mint_token(SECRET, "x", [("*", "admin")], expires=1)


def test_anonymous_without_secret_and_token_required_with_one() -> None:
    assert authenticate(None, None, now=0).access("anything") is Access.WRITE
    with pytest.raises(AuthError):
        authenticate(SECRET, None, now=0)


def test_non_loopback_bind_without_secret_refuses() -> None:
    with pytest.raises(AuthError):
        RelayConfig(host="0.0.0.0").check_bind()
    RelayConfig(host="0.0.0.0", allow_anonymous=True).check_bind()
    RelayConfig(host="0.0.0.0", secret=SECRET).check_bind()
    RelayConfig(host="::1").check_bind()


async def test_relay_start_refuses_anonymous_public_bind() -> None:
    with pytest.raises(AuthError):
        await Relay(RelayConfig(host="0.0.0.0", port=0)).start()


@pytest.fixture
async def secured() -> AsyncIterator[tuple[Relay, MemoryStore]]:
    store = MemoryStore()
    seed: Doc = Doc()
    seed.get("m", type=Map)["v"] = "original"
    await store.append("doc", bytes(seed.get_update()))
    r = Relay(RelayConfig(port=0, secret=SECRET, flush_delay=0.0), store)
    await r.start()
    try:
        yield r, store
    finally:
        await r.stop()


def _tok(access: str, pattern: str = "doc", ttl: float = 3600) -> str:
    return mint_token(SECRET, "t", [(pattern, access)], expires=time.time() + ttl)


async def test_yjs_needs_a_valid_token(secured: tuple[Relay, MemoryStore]) -> None:
    relay, _ = secured
    for url in (f"{relay.url}/doc", f"{relay.url}/doc?token=junk", f"{relay.url}/doc?token={_tok('write', 'other')}"):
        with pytest.raises(InvalidStatus) as info:
            await connect(url)
        assert info.value.response.status_code in (401, 403)
    c = await YClient.open(f"{relay.url}/doc?token={_tok('write')}")
    assert c.m.get("v") == "original"
    await c.close()


async def test_a_repeated_token_parameter_is_refused_not_guessed(secured: tuple[Relay, MemoryStore]) -> None:
    relay, _ = secured
    good = _tok("write")
    for query in (f"token={good}&token=junk", f"token=junk&token={good}", f"token={good}&token={good}"):
        with pytest.raises(InvalidStatus) as info:
            await connect(f"{relay.url}/doc?{query}")
        assert info.value.response.status_code == 400
    c = await YClient.open(f"{relay.url}/doc?token={good}&other=1&other=2")  # other parameters: no matter
    await c.close()


async def test_native_hello_without_token_is_unauthorized(secured: tuple[Relay, MemoryStore]) -> None:
    relay, _ = secured
    c = await NClient.open(f"{relay.url}/v1", token=None, doc_id=None)
    await c.wait_for(lambda: c.closed.done())
    assert "unauthorized" in c.error_codes()
    d = await NClient.open(f"{relay.url}/v1", token=_tok("read", "elsewhere/*"), doc_id=None)
    d.send(n.Subscribe("doc", b"\x00"))
    await d.wait_for(lambda: "forbidden" in d.error_codes())
    await d.close()


def _update(key: str) -> bytes:
    doc: Doc = Doc()
    doc.get("m", type=Map)["v"] = key
    return bytes(doc.get_update())


_AWARE = encode_awareness([AwarenessEntry(77, 1, state_json({"name": "reader"}))])

Y_MESSAGES = st.sampled_from(["update", "step2", "step1", "awareness", "query", "denied"])
N_MESSAGES = st.sampled_from(["update", "update_seq", "step2", "step2_seq", "step1", "awareness", "ping", "ack"])


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kinds=st.lists(Y_MESSAGES, min_size=1, max_size=8))
async def test_read_only_yjs_never_changes_the_doc(secured: tuple[Relay, MemoryStore], kinds: list[str]) -> None:
    relay, store = secured
    before = await store.load("doc")
    ro = await YClient.open(f"{relay.url}/doc?token={_tok('read')}")
    for i, kind in enumerate(kinds):
        frame = {
            "update": y.encode_yjs(y.Update(_update(f"ro{i}"))),
            "step2": y.encode_yjs(y.SyncStep2(_update(f"ro{i}"))),
            "step1": y.encode_yjs(y.SyncStep1(b"\x00")),
            "awareness": y.encode_yjs(y.Awareness(_AWARE)),
            "query": y.encode_yjs(y.QueryAwareness()),
            "denied": y.encode_yjs(y.AuthDenied("x")),
        }[kind]
        ro.send_raw(frame)
    writes = sum(k in ("update", "step2") for k in kinds)
    await ro.wait_for(lambda: len(ro.denied) >= writes)
    # a round trip proves every earlier frame was processed
    n_before = len(ro.received)
    ro.send(y.SyncStep1(b"\x00"))
    await ro.wait_for(lambda: len(ro.received) > n_before)
    room = relay.rooms.get("doc")
    assert room is not None and room.doc.get("m", type=Map).to_py() == {"v": "original"}
    await room.flush()
    assert await store.load("doc") == before
    await ro.close()


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kinds=st.lists(N_MESSAGES, min_size=1, max_size=8))
async def test_read_only_native_never_changes_the_doc(
    secured: tuple[Relay, MemoryStore], kinds: list[str]
) -> None:
    relay, store = secured
    before = await store.load("doc")
    ro = await NClient.open(f"{relay.url}/v1", token=_tok("read"), doc_id="doc")
    ro.errors.clear()
    for i, kind in enumerate(kinds):
        msg = {
            "update": n.Update("doc", _update(f"ro{i}"), 0),
            "update_seq": n.Update("doc", _update(f"ro{i}"), 100 + i),
            "step2": n.SyncStep2("doc", _update(f"ro{i}"), 0),
            "step2_seq": n.SyncStep2("doc", _update(f"ro{i}"), 200 + i),
            "step1": n.SyncStep1("doc", b"\x00"),
            "awareness": n.Awareness("doc", _AWARE),
            "ping": n.Ping(i),
            "ack": n.Ack("doc", 1),
        }[kind]
        ro.send(msg)
    writes = sum(k.startswith(("update", "step2")) for k in kinds)
    await ro.wait_for(lambda: ro.error_codes().count("forbidden") >= writes)
    ro.send(n.Ping(999))
    await ro.wait_for(lambda: any(isinstance(m, n.Pong) and m.nonce == 999 for m in ro.received))
    assert not any(isinstance(m, n.Ack) and m.seq >= 100 for m in ro.received)
    room = relay.rooms.get("doc")
    assert room is not None and room.doc.get("m", type=Map).to_py() == {"v": "original"}
    await room.flush()
    assert await store.load("doc") == before
    await ro.close()


async def test_token_refresh_on_reconnect(secured: tuple[Relay, MemoryStore]) -> None:
    relay, _ = secured
    ro = await YClient.open(f"{relay.url}/doc?token={_tok('read')}")
    await ro.close()
    rw = await YClient.open(f"{relay.url}/doc?token={_tok('write')}")
    rw.m["v"] = "changed"
    room = relay.rooms.get("doc")
    assert room is not None
    await asyncio.wait_for(until(lambda: room.doc.get("m", type=Map).get("v") == "changed"), 5)
    await rw.close()



def test_an_altered_token_string_never_verifies() -> None:
    tok = mint_token(SECRET, "x", [("*", "write")], expires=2e9)
    body, sig = tok.split(".")
    std_sig = sig.replace("-", "+").replace("_", "/")
    variants = [tok + "!!!", body + "!." + sig, tok + "=", body + "." + sig + "A"]
    if std_sig != sig:
        variants.append(body + "." + std_sig)
    for altered in variants:
        with pytest.raises(AuthError):
            verify_token(SECRET, altered, now=0)
    assert verify_token(SECRET, tok, now=0).subject == "x"
