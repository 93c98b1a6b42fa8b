"""Reconnect delays: exponential backoff with jitter. Pure: the random source is injected."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

__all__ = ["Backoff"]


@dataclass(frozen=True)
class Backoff:
    """``delay(attempt)`` for attempt 0, 1, 2...: ``initial * multiplier**attempt`` capped at
    ``maximum``, then scaled by a random factor in ``[1 - jitter, 1]`` ("equal jitter" when
    jitter is 0.5; 0 disables it). Jitter spreads the reconnects of many clients after a relay
    restart instead of having them all arrive at once."""

    initial: float = 0.5
    maximum: float = 30.0
    multiplier: float = 2.0
    jitter: float = 0.5
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.initial < 0 or self.maximum < self.initial:
            raise ValueError("need 0 <= initial <= maximum")
        if self.multiplier < 1:
            raise ValueError("multiplier must be >= 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter must be within [0, 1]")

    def ceiling(self, attempt: int) -> float:
        """The delay before jitter."""
        if attempt < 0:
            raise ValueError("attempt must be >= 0")
        # avoid float overflow for large attempts
        if attempt > 64:
            return self.maximum
        return min(self.maximum, self.initial * self.multiplier**attempt)

    def delay(self, attempt: int) -> float:
        base = self.ceiling(attempt)
        return base * (1.0 - self.jitter * self.rng.random())
