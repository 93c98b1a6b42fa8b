"""Choosing the event loop the relay runs on: ``crdtsync relay --loop auto|uvloop|asyncio``.

``auto`` (the default) uses uvloop when it is installed (``pip install 'crdtsync[relay]'``
pulls it in on Linux and macOS) and the standard asyncio loop otherwise; ``uvloop`` insists on
it; ``asyncio`` never uses it. uvloop roughly halves the relay's per-frame socket cost, which is
most of its fan-out work (``docs/relay.md`` has the numbers). Call :func:`run_relay_loop`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

LOOPS = ("auto", "uvloop", "asyncio")


def loop_factory(kind: str) -> tuple[Callable[[], asyncio.AbstractEventLoop] | None, str]:
    """``(factory, name)`` for ``kind``; ``factory`` is None for the standard loop.
    Raises ValueError for an unknown kind or ``uvloop`` when it is not installed."""
    if kind not in LOOPS:
        raise ValueError(f"unknown event loop {kind!r}: choose one of {', '.join(LOOPS)}")
    if kind == "asyncio":
        return None, "asyncio"
    try:
        import uvloop
    except ImportError:
        if kind == "uvloop":
            raise ValueError("--loop uvloop: uvloop is not installed (pip install uvloop)") from None
        return None, "asyncio"
    return uvloop.new_event_loop, "uvloop"


def run_relay_loop(main: Callable[[], Coroutine[Any, Any, T]], kind: str = "auto") -> T:
    """Run ``main()`` to completion on the loop ``kind`` selects (see :func:`loop_factory`)."""
    factory, _ = loop_factory(kind)
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main())
