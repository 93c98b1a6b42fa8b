"""A token bucket for per-connection message rates (pure: time is passed in)."""

from __future__ import annotations


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved. ``take(now)`` spends one."""

    __slots__ = ("_last", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: int, now: float):
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._last = now

    def take(self, now: float, cost: float = 1.0) -> bool:
        """Spend ``cost`` tokens if available; False means the caller is over its rate."""
        elapsed = now - self._last
        if elapsed > 0:
            self._tokens = min(float(self.burst), self._tokens + elapsed * self.rate)
            self._last = now
        if self._tokens >= cost:
            self._tokens -= cost
            return True
        return False
