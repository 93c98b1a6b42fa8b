from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from crdtsync.relay import Relay, RelayConfig
from crdtsync.storage import MemoryStore


@pytest.fixture
async def relay() -> AsyncIterator[Relay]:
    r = Relay(RelayConfig(port=0), MemoryStore())
    await r.start()
    try:
        yield r
    finally:
        await r.stop()
