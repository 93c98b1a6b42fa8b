"""Awareness payload codec, validation limits and the relay's AwarenessRegistry."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pycrdt import Awareness as PycrdtAwareness
from pycrdt import Doc

from crdtsync.errors import FrameError, MessageTooLargeError
from crdtsync.protocol.awareness import (
    AwarenessEntry,
    AwarenessLimits,
    AwarenessNotOwnedError,
    AwarenessRegistry,
    AwarenessTooDeepError,
    AwarenessTooLargeError,
    InvalidAwarenessError,
    decode_awareness,
    encode_awareness,
    state_json,
)
from crdtsync.protocol.lib0 import Encoder

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**31), 2**31) | st.text(max_size=10),
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=5), kids, max_size=3),
    max_leaves=10,
)


def entry(cid: int, clock: int, state: Any) -> AwarenessEntry:
    return AwarenessEntry(cid, clock, state_json(state))


def payload(*entries: AwarenessEntry) -> bytes:
    return encode_awareness(entries)


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


# -- codec -----------------------------------------------------------------------------------


def test_known_encoding_with_non_ascii_state() -> None:
    state = '{"name":"Zoë 😀"}'.encode()
    wire = payload(AwarenessEntry(300, 2, state))
    assert wire.hex() == "01" + "ac02" + "02" + f"{len(state):02x}" + state.hex()
    (e,) = decode_awareness(wire)
    assert e.state == state  # byte-exact
    assert e.value() == {"name": "Zoë 😀"}


@given(st.lists(st.tuples(st.integers(0, 2**32), st.integers(0, 2**40), json_values), max_size=8))
def test_round_trip(items: list[tuple[int, int, Any]]) -> None:
    entries = [entry(c, k, v) for c, k, v in items]
    decoded = decode_awareness(payload(*entries))
    assert [(e.client_id, e.clock, e.value()) for e in decoded] == items
    assert [e.removed for e in decoded] == [v is None for _, _, v in items]


def test_pycrdt_awareness_payload_decodes_and_ours_applies_to_pycrdt() -> None:
    theirs = PycrdtAwareness(Doc())
    theirs.set_local_state({"user": "Zoë"})  # pycrdt writes JSON with \\u escapes
    (e,) = decode_awareness(theirs.encode_awareness_update([theirs.client_id]))
    assert e.value() == {"user": "Zoë"}

    mine = PycrdtAwareness(Doc())
    mine.apply_awareness_update(payload(entry(77, 3, {"user": "Zoë"})), "test")
    assert mine.states[77] == {"user": "Zoë"}


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b"NaN", b"[Infinity]", b"\xff", b'{"a":1} x', b"-"],
)
def test_invalid_json_states_are_rejected(raw: bytes) -> None:
    with pytest.raises(InvalidAwarenessError):
        decode_awareness(payload(AwarenessEntry(1, 1, raw)))


def test_whitespace_null_is_a_removal() -> None:
    (e,) = decode_awareness(payload(AwarenessEntry(1, 1, b" null ")))
    assert e.removed


def test_limits() -> None:
    limits = AwarenessLimits(max_payload_bytes=100, max_clients=2, max_depth=3)
    with pytest.raises(AwarenessTooLargeError) as too_big:
        decode_awareness(payload(entry(1, 1, "x" * 200)), limits)
    assert isinstance(too_big.value, MessageTooLargeError)
    with pytest.raises(AwarenessTooLargeError):
        decode_awareness(payload(entry(1, 1, 0), entry(2, 1, 0), entry(3, 1, 0)), limits)
    decode_awareness(payload(entry(1, 1, [[[1]]])), limits)
    with pytest.raises(AwarenessTooDeepError):
        decode_awareness(payload(entry(1, 1, [[[[1]]]])), limits)
    with pytest.raises(AwarenessTooDeepError):
        decode_awareness(payload(entry(1, 1, {"a": {"b": {"c": {"d": 1}}}})), limits)
    with pytest.raises(ValueError):
        AwarenessLimits(max_depth=0)


def test_absurd_nesting_is_rejected_without_recursion_error() -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(AwarenessTooDeepError):
        decode_awareness(payload(AwarenessEntry(1, 1, deep)), AwarenessLimits(max_payload_bytes=10**6))


def test_count_larger_than_data_is_malformed() -> None:
    enc = Encoder()
    enc.write_var_uint(5)
    enc.write_var_uint(1)
    with pytest.raises(InvalidAwarenessError):
        decode_awareness(enc.to_bytes())


@given(st.binary(max_size=200))
def test_random_payloads_only_raise_invalid_awareness(data: bytes) -> None:
    try:
        decode_awareness(data)
    except InvalidAwarenessError as exc:
        assert isinstance(exc, FrameError)


# -- registry --------------------------------------------------------------------------------


def test_apply_adds_updates_renews_and_reports_payload() -> None:
    reg = AwarenessRegistry(clock=Clock())
    p1 = payload(entry(1, 0, {"n": "a"}))
    ch = reg.apply(p1, owner="A")
    assert ch.added == (1,) and ch.changed and ch.payload == p1  # clock 0 first sight accepted
    assert reg.owned_by("A") == {1}

    ch = reg.apply(payload(entry(1, 1, {"n": "b"})), owner="A")
    assert ch.updated == (1,) and ch.changed

    p3 = payload(entry(1, 2, {"n": "b"}))
    ch = reg.apply(p3, owner="A")
    assert ch.renewed == (1,) and not ch.changed and ch.applied and ch.payload == p3


def test_echoes_of_known_states_change_nothing() -> None:
    """A stock y-websocket client re-sends every state it receives: the relay must not
    broadcast those again (echo storms)."""
    reg = AwarenessRegistry(clock=Clock())
    reg.apply(payload(entry(1, 5, {"n": "a"})), owner="A")
    reg.apply(payload(entry(2, 3, {"n": "b"})), owner="B")
    echo = reg.encode_all()
    assert echo is not None
    ch = reg.apply(echo, owner="C")
    assert ch == type(ch)()  # nothing at all
    assert not ch.applied
    # an older clock is ignored too
    assert not reg.apply(payload(entry(1, 4, {"n": "old"})), owner="C").applied
    assert reg.owned_by("C") == frozenset()


def test_partial_application_reencodes_only_applied_entries_byte_exactly() -> None:
    reg = AwarenessRegistry(clock=Clock())
    reg.apply(payload(entry(1, 5, {"n": "a"})), owner="A")
    raw = '{"n":"Ünïcode ✓"}'.encode()
    mixed = payload(entry(1, 5, {"n": "a"}), AwarenessEntry(2, 1, raw))
    ch = reg.apply(mixed, owner="B")
    assert ch.added == (2,)
    assert decode_awareness(ch.payload) == [AwarenessEntry(2, 1, raw)]


def test_removal_rules() -> None:
    reg = AwarenessRegistry(clock=Clock())
    reg.apply(payload(entry(1, 5, {"n": "a"})), owner="A")
    # equal clock with null removes
    ch = reg.apply(payload(entry(1, 5, None)), owner="A")
    assert ch.removed == (1,) and len(reg) == 0
    # the echo of the removal changes nothing
    assert not reg.apply(payload(entry(1, 5, None)), owner="B").applied
    # a stale re-send of the old state (same clock) does not resurrect it
    assert not reg.apply(payload(entry(1, 5, {"n": "a"})), owner="B").applied
    # a newer clock does
    assert reg.apply(payload(entry(1, 6, {"n": "a"})), owner="A").added == (1,)
    # null for a client never seen: nothing to broadcast
    assert not reg.apply(payload(entry(9, 1, None)), owner="A").applied


def test_remove_owner_broadcasts_removal_of_its_clients_only() -> None:
    reg = AwarenessRegistry(clock=Clock())
    reg.apply(payload(entry(1, 5, {"n": "a"}), entry(2, 1, {"n": "a2"})), owner="A")
    reg.apply(payload(entry(3, 1, {"n": "b"})), owner="B")
    removal = reg.remove_owner("A")
    assert removal is not None
    assert decode_awareness(removal) == [AwarenessEntry(1, 5, b"null"), AwarenessEntry(2, 1, b"null")]
    assert reg.states() == {3: state_json({"n": "b"})}
    assert reg.remove_owner("A") is None

    # the removal applied to pycrdt's Awareness removes the states there too (same clock + null)
    peer = PycrdtAwareness(Doc())
    peer.apply_awareness_update(payload(entry(1, 5, {"n": "a"})), "t")
    peer.apply_awareness_update(removal, "t")
    assert 1 not in peer.states


def test_ownership_moves_to_a_new_connection_of_the_same_user() -> None:
    reg = AwarenessRegistry(clock=Clock())
    reg.apply(payload(entry(1, 5, {"n": "a"})), owner="old-socket", principal="ana")
    reg.apply(payload(entry(1, 6, {"n": "a"})), owner="new-socket", principal="ana")
    assert reg.owned_by("new-socket") == {1} and reg.owned_by("old-socket") == frozenset()
    assert reg.remove_owner("old-socket") is None
    assert len(reg) == 1


def test_expiry_uses_the_injected_clock() -> None:
    clock = Clock()
    reg = AwarenessRegistry(clock=clock, timeout=30)
    reg.apply(payload(entry(1, 1, {"n": "a"})), owner="A")
    clock.t += 20
    reg.apply(payload(entry(2, 1, {"n": "b"})), owner="B")
    assert reg.next_expiry() == 130.0
    clock.t += 10
    removal = reg.expire()
    assert removal is not None and [e.client_id for e in decode_awareness(removal)] == [1]
    assert reg.owned_by("A") == frozenset()
    assert reg.expire() is None
    clock.t += 30
    assert reg.expire() is not None  # client 2
    clock.t += 31
    reg.expire()
    assert reg.clock_of(1) is None  # tombstones are forgotten after another timeout


def test_non_ascii_states_round_trip_byte_exactly_through_encode_all() -> None:
    reg = AwarenessRegistry(clock=Clock())
    raw = json.dumps({"name": "日本語 ✓ 😀"}, ensure_ascii=False).encode()
    reg.apply(payload(AwarenessEntry(42, 1, raw)), owner="A")
    all_ = reg.encode_all()
    assert all_ is not None and decode_awareness(all_) == [AwarenessEntry(42, 1, raw)]


def test_bad_payload_applies_nothing() -> None:
    reg = AwarenessRegistry(clock=Clock(), limits=AwarenessLimits(max_depth=2))
    bad = payload(entry(1, 1, {"ok": 1}), entry(2, 1, [[[1]]]))
    with pytest.raises(AwarenessTooDeepError):
        reg.apply(bad, owner="A")
    assert len(reg) == 0 and reg.owned_by("A") == frozenset()


@pytest.mark.parametrize("principal", [None, "bob"])
def test_another_connection_cannot_change_or_remove_a_state_it_does_not_own(principal: str | None) -> None:
    reg = AwarenessRegistry(clock=Clock())
    reg.apply(payload(entry(1, 5, {"n": "a"})), owner="A", principal="ana")
    for spoof in (entry(1, 6, {"n": "evil"}), entry(1, 6, None), entry(1, 5, None)):
        with pytest.raises(AwarenessNotOwnedError) as info:
            reg.apply(payload(spoof, entry(2, 1, {"n": "b"})), owner="B", principal=principal)
        assert info.value.client_ids == (1,)
    assert reg.states() == {1: b'{"n":"a"}'} and reg.owned_by("A") == {1}  # nothing applied


def test_an_echo_of_another_connections_state_is_ignored_not_refused() -> None:
    reg = AwarenessRegistry(clock=Clock())
    reg.apply(payload(entry(1, 5, {"n": "a"})), owner="A", principal="ana")
    change = reg.apply(payload(entry(1, 5, {"n": "a"}), entry(2, 1, {"n": "b"})), owner="B", principal="bob")
    assert change.added == (2,) and reg.owned_by("A") == {1} and reg.owned_by("B") == {2}
