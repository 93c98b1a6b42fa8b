"""Prometheus metrics for one relay, in a registry of its own (never the global one), so
several relays in one process (tests) do not collide. Served at ``/metrics``."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest


class RelayMetrics:
    """Counters and gauges the relay updates; :meth:`render` gives the text exposition."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.connections = Gauge("crdtsync_connections", "Open websocket connections", ["protocol"], registry=r)
        self.connections_total = Counter(
            "crdtsync_connections_opened", "Connections accepted", ["protocol"], registry=r
        )
        self.rooms = Gauge("crdtsync_rooms", "Loaded rooms", registry=r)
        self.rooms_failed = Counter("crdtsync_room_load_failures", "Room loads that failed", registry=r)
        self.updates_in = Counter("crdtsync_updates_received", "Document updates received", registry=r)
        self.updates_out = Counter("crdtsync_updates_sent", "Document updates sent", registry=r)
        self.bytes_in = Counter("crdtsync_bytes_received", "Frame bytes received", registry=r)
        self.bytes_out = Counter("crdtsync_bytes_sent", "Frame bytes sent", registry=r)
        self.awareness_in = Counter("crdtsync_awareness_received", "Awareness messages received", registry=r)
        self.awareness_out = Counter(
            "crdtsync_awareness_sent", "Awareness messages sent (broadcasts and snapshots)", registry=r
        )
        self.errors = Counter("crdtsync_protocol_errors", "Typed errors sent to peers", ["code"], registry=r)
        self.dropped = Counter("crdtsync_connections_dropped", "Connections closed by a limit", ["reason"], registry=r)
        self.throttled = Counter(
            "crdtsync_frames_throttled", "Received frames held back by the rate limit (handled later, never dropped)",
            registry=r,
        )
        self.throttle_seconds = Counter(
            "crdtsync_throttle_seconds", "Time connections spent held back by the rate limit", registry=r
        )
        self.queue_depth = Gauge("crdtsync_queue_depth_max", "Largest outgoing queue right now", registry=r)
        self.queued = Gauge("crdtsync_queue_depth_total", "Messages queued for sending", registry=r)
        self.flushes = Counter("crdtsync_store_flushes", "Batches written to the store", registry=r)
        self.flush_errors = Counter("crdtsync_store_flush_errors", "Store writes that failed", registry=r)
        self.store_size = Gauge("crdtsync_store_bytes", "Bytes the store occupies", registry=r)
        self.compactions = Gauge("crdtsync_store_compactions", "Compactions done by the store", registry=r)

    def bind_store(self, size: Callable[[], float], compactions: Callable[[], float]) -> None:
        """Read store size and compaction count at scrape time."""
        self.store_size.set_function(size)
        self.compactions.set_function(compactions)

    def bind_queues(self, depths: Callable[[], list[int]]) -> None:
        self.queue_depth.set_function(lambda: max(depths(), default=0))
        self.queued.set_function(lambda: sum(depths()))

    def render(self) -> bytes:
        return bytes(generate_latest(self.registry))
