"""Our y-websocket frames against pycrdt's own sync helpers, both ways."""

from __future__ import annotations

from typing import Any

from pycrdt import (
    Doc,
    Map,
    create_sync_message,
    create_update_message,
    handle_sync_message,
    read_message,
)

from crdtsync.protocol.yjs import SyncStep1, SyncStep2, Update, decode_yjs, encode_yjs


def doc_with(**values: Any) -> Doc[Any]:
    doc: Doc[Any] = Doc()
    m = doc.get("root", type=Map[Any])
    for k, v in values.items():
        m[k] = v
    return doc


def root(doc: Doc[Any]) -> dict[str, Any]:
    return dict(doc.get("root", type=Map[Any]).to_py() or {})


def test_our_sync_step2_and_update_are_accepted_by_pycrdt() -> None:
    src = doc_with(title="héllo ✓")
    dst: Doc[Any] = Doc()
    for frame in (encode_yjs(SyncStep2(src.get_update())), encode_yjs(Update(src.get_update()))):
        assert frame[0] == 0  # y-websocket "sync"; pycrdt's handler takes the rest
        assert read_message(frame[2:]) == src.get_update()
        assert handle_sync_message(frame[1:], dst) is None
    assert root(dst) == {"title": "héllo ✓"}


def test_our_sync_step1_gets_a_pycrdt_step2_we_decode_and_apply() -> None:
    server = doc_with(a=1, b="two")
    client: Doc[Any] = Doc()
    reply = handle_sync_message(encode_yjs(SyncStep1(client.get_state()))[1:], server)
    assert reply is not None
    msg = decode_yjs(reply)  # pycrdt replies with a whole y-websocket frame
    assert isinstance(msg, SyncStep2)
    client.apply_update(msg.update)
    assert root(client) == {"a": 1.0, "b": "two"}


def test_pycrdt_messages_decode_with_ours() -> None:
    doc = doc_with(x="ünïcode")
    step1 = decode_yjs(create_sync_message(doc))
    assert step1 == SyncStep1(doc.get_state())
    upd = decode_yjs(create_update_message(doc.get_update()))
    assert upd == Update(doc.get_update())
