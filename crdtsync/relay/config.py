""":class:`RelayConfig`: every knob of the relay, with sensible defaults and validation.

Build one directly or through ``crdtsync relay --help`` (each field has a flag). Pass it to
:class:`~crdtsync.relay.Relay`.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from ..protocol.awareness import AwarenessLimits

NATIVE_PATH = "/v1"


def is_loopback(host: str) -> bool:
    """True if ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class RelayConfig:
    """Relay settings. Sizes are bytes, times seconds, rates messages per second."""

    host: str = "127.0.0.1"
    port: int = 8765
    native_path: str = NATIVE_PATH
    #: HMAC secret for tokens; ``None`` means anonymous read-write (loopback binds only).
    secret: bytes | None = None
    #: allow anonymous access on a non-loopback bind (dangerous; explicit opt-in).
    allow_anonymous: bool = False
    max_message_size: int = 4 << 20
    #: outgoing messages queued per connection before it is dropped as a slow consumer.
    max_queue: int = 4096
    #: frames join a socket's write batch (one write per event-loop iteration) while its write
    #: buffer plus the batch hold less than this many bytes; above it they wait in the bounded
    #: queue (``max_queue``) for the socket to drain.
    write_buffer: int = 64 << 10
    #: token bucket per connection: sustained rate and burst of incoming messages. Over it the
    #: relay reads the connection more slowly (TCP pushes back); nothing is dropped.
    rate: float = 2000.0
    burst: int = 4000
    #: a connection held back by the rate limit for longer than this without a break is closed
    #: (4029) after what it already sent is handled; ``None``: never.
    max_throttle: float | None = 60.0
    max_rooms: int = 10_000
    max_connections: int = 10_000
    #: documents a native connection may subscribe to at once.
    max_subscriptions: int = 1000
    #: bytes of frames a native connection may have held for documents whose room is still
    #: loading (besides at most ``max_queue`` frames per document); beyond it: limit_exceeded.
    max_held_bytes: int = 8 << 20
    awareness: AwarenessLimits = field(default_factory=lambda: AwarenessLimits(max_payload_bytes=64 << 10))
    #: read-only connections may publish presence (their own client ids only).
    reader_presence: bool = True
    #: how long awareness states live without renewal (y-protocols: 30 s).
    awareness_timeout: float = 30.0
    #: pure renewals (nothing changed) are batched and sent at most this often.
    awareness_coalesce: float = 5.0
    #: a room with no connection is unloaded after this long.
    idle_unload: float = 30.0
    #: y-websocket updates (no ack) are durable within this delay.
    flush_delay: float = 0.2
    #: a room whose load takes longer than this is marked failed.
    load_timeout: float = 30.0
    #: websocket keepalive ping interval (``None`` disables).
    ping_interval: float | None = 30.0
    #: how long shutdown waits for room flushes before giving up.
    shutdown_timeout: float = 30.0

    def __post_init__(self) -> None:
        if not self.native_path.startswith("/") or self.native_path in ("/", "/healthz", "/metrics"):
            raise ValueError("native_path must start with '/' and not clash with other routes")
        if self.secret is not None and len(self.secret) < 16:
            raise ValueError("secret must be at least 16 bytes")
        for name in ("max_message_size", "max_queue", "write_buffer", "burst", "max_rooms", "max_connections",
                     "max_subscriptions", "max_held_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        for name in ("rate", "awareness_timeout", "awareness_coalesce", "load_timeout",
                     "shutdown_timeout"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0")
        if self.max_throttle is not None and self.max_throttle <= 0:
            raise ValueError("max_throttle must be > 0 (or None)")
        if self.idle_unload < 0 or self.flush_delay < 0:
            raise ValueError("idle_unload and flush_delay must be >= 0")
        if self.flush_delay > 1.0:
            raise ValueError("flush_delay above 1 s breaks the durability promise")
        if not 0 <= self.port <= 65535:
            raise ValueError("port out of range")

    @property
    def anonymous(self) -> bool:
        return self.secret is None

    def check_bind(self) -> None:
        """Raise :class:`~crdtsync.errors.AuthError` for an anonymous non-loopback bind."""
        from ..errors import AuthError

        if self.secret is None and not is_loopback(self.host) and not self.allow_anonymous:
            raise AuthError(
                f"refusing to serve anonymously on {self.host}: set a secret (--secret or "
                "CRDTSYNC_SECRET) or pass --allow-anonymous"
            )
