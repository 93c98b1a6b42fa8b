"""What a provider knows about one document's sync: wanted or not, the current session's
handshake progress, and which local writes the relay has not acknowledged yet."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from ..clock import TimerHandle
from ..errors import MessageTooLargeError, RemoteError
from .awareness import DocAwareness

__all__ = ["DocSync"]


@dataclass(eq=False)
class DocSync:
    doc_id: str
    wanted: bool = False  # subscribed (explicitly, or while retained)
    explicit: bool = False  # subscribe() was called (and not undone by unsubscribe())
    refs: int = 0  # retain() holders
    gc_timer: TimerHandle | None = None  # pending unsubscribe after the last release
    retry_timer: TimerHandle | None = None  # pending resubscribe after room_unavailable
    awareness: DocAwareness | None = None
    # -- the current session (reset by ``reset_session``) --
    active: bool = False  # Subscribe sent on the current connection
    got_step2: bool = False  # the relay's SyncStep2 (what we missed) was applied
    answered: bool = False  # we answered the relay's SyncStep1
    answer_seq: int = 0  # seq of that answer until acknowledged (0: nothing outstanding)
    pending: deque[int] = field(default_factory=deque)  # seqs of Updates sent, not yet acked
    read_only: bool = False  # the relay refused a write on this document
    error: RemoteError | MessageTooLargeError | None = None  # the latest non-fatal error about this document
    # -- across sessions --
    dirty: bool = False  # local changes the relay may not have (made offline or unacked at a drop)

    @property
    def synced(self) -> bool:
        """Both directions exchanged on the current connection (and our side acknowledged)."""
        return self.active and self.got_step2 and self.answered and (self.answer_seq == 0 or self.read_only)

    @property
    def acked(self) -> bool:
        """No local change is waiting for the relay's acknowledgement."""
        return not self.dirty and not self.pending and self.answer_seq == 0

    def ack(self, seq: int) -> None:
        """A cumulative Ack: every write with seq <= ``seq`` is durable."""
        while self.pending and self.pending[0] <= seq:
            self.pending.popleft()
        if self.answer_seq and self.answer_seq <= seq:
            self.answer_seq = 0
            self.dirty = False  # the answer carried everything the relay lacked

    def cancel_timers(self) -> None:
        for timer in (self.gc_timer, self.retry_timer):
            if timer is not None:
                timer.cancel()
        self.gc_timer = self.retry_timer = None

    def reset_session(self) -> None:
        """The connection is gone: whatever was not acknowledged must go again next time."""
        if self.pending or self.answer_seq:
            self.dirty = True
        self.active = self.got_step2 = self.answered = False
        self.answer_seq = 0
        self.pending.clear()
        self.read_only = False
        self.error = None
