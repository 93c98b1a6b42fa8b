"""What every endpoint session needs from the relay (one object, passed around)."""

from __future__ import annotations

from dataclasses import dataclass

from ..clock import Clock
from .config import RelayConfig
from .metrics import RelayMetrics
from .rooms import RoomManager


@dataclass(frozen=True, slots=True)
class RelayContext:
    config: RelayConfig
    rooms: RoomManager
    metrics: RelayMetrics
    clock: Clock
