"""Ported from TanStack query-core ``focusManager.test.tsx`` and ``onlineManager.test.tsx``
(behaviour, not code). Python has no window events: the app tells the managers."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from crdtsync.query import FocusManager, OnlineManager


def test_focus_manager_starts_focused() -> None:
    """focusManager: 'isFocused should return true when document.visibilityState is undefined'
    (no environment information: focused)."""
    assert FocusManager().is_focused() is True
    assert FocusManager(focused=False).is_focused() is False


@pytest.mark.parametrize("make", [
    lambda: (FocusManager(), "set_focused"),
    lambda: (OnlineManager(), "set_online"),
], ids=["focus", "online"])
def test_manager_notifies_on_change_only(make: Any) -> None:
    """focusManager: 'should call the listener when focus changes'; onlineManager: 'should not
    notify listeners when online state does not change' and 'should notify listeners when the
    online state changes'."""
    manager, setter = make()
    seen: list[bool] = []
    manager.subscribe(seen.append)
    for value in (True, False, False, True):
        getattr(manager, setter)(value)
    assert seen == [False, True]


def test_signal_focus_notifies_when_already_focused() -> None:
    """focusManager: 'setFocused(undefined)'/window focus event: a focus event notifies even when
    already focused (Python: ``signal_focus``)."""
    manager = FocusManager()
    seen: list[bool] = []
    manager.subscribe(seen.append)
    manager.signal_focus()
    assert seen == [True] and manager.is_focused()
    manager.set_focused(False)
    manager.signal_focus()
    assert seen == [True, False, True]


def test_focus_manager_unsubscribe() -> None:
    """focusManager: 'should remove the listener when unsubscribing'."""
    manager = FocusManager()
    seen: list[bool] = []
    unsubscribe = manager.subscribe(seen.append)
    assert manager.has_listeners()
    unsubscribe()
    unsubscribe()  # twice is harmless
    manager.set_focused(False)
    assert seen == [] and not manager.has_listeners()


def test_online_manager_starts_online() -> None:
    """onlineManager: 'isOnline should return true if navigator is undefined'."""
    assert OnlineManager().is_online() is True


def test_online_manager_several_listeners_and_unsubscribe() -> None:
    """onlineManager: 'should call all listeners' and 'should remove a listener'."""
    manager = OnlineManager()
    a: list[bool] = []
    b: list[bool] = []
    manager.subscribe(a.append)
    unsubscribe_b = manager.subscribe(b.append)
    manager.set_online(False)
    unsubscribe_b()
    manager.set_online(True)
    assert a == [False, True] and b == [False]


async def test_wait_online_returns_when_back_online() -> None:
    """onlineManager: waiting for the network resolves once online (what paused fetches use)."""
    manager = OnlineManager(online=False)
    waiter = asyncio.create_task(manager.wait_online())
    await asyncio.sleep(0)
    assert not waiter.done()
    manager.set_online(True)
    await asyncio.wait_for(waiter, 2)
    await asyncio.wait_for(manager.wait_online(), 2)  # at once when online


async def test_wait_focused_returns_when_focused() -> None:
    """focusManager: waiting for focus resolves once focused (what paused retries use)."""
    manager = FocusManager(focused=False)
    waiter = asyncio.create_task(manager.wait_focused())
    await asyncio.sleep(0)
    assert not waiter.done()
    manager.signal_focus()
    await asyncio.wait_for(waiter, 2)
