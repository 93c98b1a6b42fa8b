"""Awareness removal markers stay bounded: unknown removals are not recorded, markers expire,
and the registry has a size cap."""

from __future__ import annotations

import pytest

from crdtsync.protocol.awareness import (
    AwarenessEntry,
    AwarenessLimits,
    AwarenessRegistry,
    AwarenessTooLargeError,
    encode_awareness,
)


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def _payload(*entries: tuple[int, int, bytes]) -> bytes:
    return encode_awareness(AwarenessEntry(cid, clock, state) for cid, clock, state in entries)


def test_removal_of_a_never_seen_client_is_not_recorded() -> None:
    reg = AwarenessRegistry(clock=Clock(), timeout=1.0)
    change = reg.apply(_payload(*((i, 1, b"null") for i in range(500))), "a")
    assert not change.applied
    assert len(reg._clients) == 0
    assert reg.next_expiry() is None


def test_removal_markers_are_scheduled_for_expiry_and_forgotten() -> None:
    clock = Clock()
    reg = AwarenessRegistry(clock=clock, timeout=1.0)
    reg.apply(_payload((1, 1, b'{"x":1}')), "a")
    clock.t += 0.5
    reg.apply(_payload((1, 2, b"null")), "a")  # a marker remembering clock 2
    assert len(reg) == 0 and len(reg._clients) == 1
    assert reg.next_expiry() == pytest.approx(101.5)
    clock.t = 101.5
    assert reg.expire() is None
    assert len(reg._clients) == 0
    assert reg.next_expiry() is None


def test_registry_size_is_capped() -> None:
    clock = Clock()
    reg = AwarenessRegistry(clock=clock, timeout=30.0, limits=AwarenessLimits(max_registry_clients=3))
    reg.apply(_payload((1, 1, b"1"), (2, 1, b"2")), "a")
    reg.apply(_payload((1, 2, b"null")), "a")  # client 1 leaves a marker
    reg.apply(_payload((3, 1, b"3")), "a")  # full: 1 marker + 2 live
    clock.t += 1
    reg.apply(_payload((4, 1, b"4")), "b")  # the oldest marker makes way
    assert reg.states() == {2: b"2", 3: b"3", 4: b"4"}
    with pytest.raises(AwarenessTooLargeError):
        reg.apply(_payload((5, 1, b"5")), "b")
    assert reg.states() == {2: b"2", 3: b"3", 4: b"4"}  # nothing applied
    reg.apply(_payload((2, 2, b'"renewed"')), "a")  # known ids are still served
    with pytest.raises(ValueError):
        AwarenessLimits(max_registry_clients=0)
