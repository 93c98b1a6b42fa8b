"""What a provider's application wants of one document: subscribed or not (explicitly, or
while retained), the timers around that, and its presence. The protocol state of the document
(handshake progress, unacknowledged writes) is the session's:
:class:`~crdtsync.protocol.client_session.DocSession`."""

from __future__ import annotations

from dataclasses import dataclass

from ..clock import TimerHandle
from .awareness import DocAwareness

__all__ = ["DocSync"]


@dataclass(eq=False)
class DocSync:
    doc_id: str
    wanted: bool = False  # subscribed (explicitly, or while retained)
    explicit: bool = False  # subscribe() was called (and not undone by unsubscribe())
    refs: int = 0  # retain() holders
    gc_timer: TimerHandle | None = None  # pending unsubscribe after the last release
    retry_timer: TimerHandle | None = None  # pending resubscribe after a refusal
    awareness: DocAwareness | None = None

    def cancel_timers(self) -> None:
        for timer in (self.gc_timer, self.retry_timer):
            if timer is not None:
                timer.cancel()
        self.gc_timer = self.retry_timer = None
