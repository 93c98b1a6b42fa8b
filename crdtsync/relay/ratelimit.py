"""Per-connection rate limiting that slows a client down instead of dropping what it sent.

:class:`Throttle` is pure (time is passed in). The receive loop calls :meth:`Throttle.pace`
for every frame it has read: it spends one token and answers how long to wait before handling
the frame. While the loop waits it does not read the socket, so the websocket library's receive
buffer fills, it stops reading from TCP, and TCP pushes back on the client: a burst is spread
out over time, never discarded.

A connection that has been held back *without a break* (every frame had to wait) for longer
than ``max_throttle`` seconds is sustained abuse, far above the configured rate; the endpoint
then closes it (4029), after handling every frame it had already received. ``None`` never
disconnects.
"""

from __future__ import annotations


class Throttle:
    """A token bucket of ``rate`` tokens per second holding at most ``burst``, that lends
    against future refills instead of refusing."""

    __slots__ = ("_last", "_since", "_tokens", "burst", "max_throttle", "rate")

    def __init__(self, rate: float, burst: int, now: float, *, max_throttle: float | None = None):
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        if max_throttle is not None and max_throttle <= 0:
            raise ValueError("max_throttle must be > 0 (or None)")
        self.rate = rate
        self.burst = burst
        self.max_throttle = max_throttle
        self._tokens = float(burst)
        self._last = now
        self._since: float | None = None  # when the current run of held-back frames began

    def pace(self, now: float) -> float:
        """Spend one token; the seconds to wait before handling the frame (0.0: at once)."""
        elapsed = now - self._last
        if elapsed > 0:
            self._tokens = min(float(self.burst), self._tokens + elapsed * self.rate)
            self._last = now
        self._tokens -= 1.0
        if self._tokens >= 0.0:
            self._since = None
            return 0.0
        if self._since is None:
            self._since = now
        return -self._tokens / self.rate

    def throttled_for(self, now: float) -> float:
        """How long the connection has been held back without a break (0.0 if it is not)."""
        return 0.0 if self._since is None else now - self._since

    def abusive(self, now: float) -> bool:
        """True once the connection has been held back without a break for longer than
        ``max_throttle`` seconds: close it (after handling what it already sent)."""
        return self.max_throttle is not None and self.throttled_for(now) > self.max_throttle
