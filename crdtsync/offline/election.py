"""Leader election with an OS file lock: whoever holds ``fcntl.flock`` on the lock file leads.

The kernel releases a ``flock`` when its holder's file descriptor closes, including when the
process is killed with SIGKILL, so a dead leader can never keep the lock. Every candidate
waits for the lock in one daemon thread blocked in ``flock(LOCK_EX)``; when the leader dies,
the kernel wakes exactly one waiter, which becomes the leader at once (no polling).

Use :class:`LeaderLock`: ``start(on_acquired)``, then ``release()`` when done. ``on_acquired``
runs in the waiter thread: hand it to the event loop with ``loop.call_soon_threadsafe``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Callable
from pathlib import Path


class LeaderLock:
    """A candidacy for leadership of one lock file."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._fd: int | None = None
        self._held = False
        self._stopped = False
        self._mutex = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def held(self) -> bool:
        """True while this process holds the lock (it is the leader)."""
        return self._held

    def try_acquire(self) -> bool:
        """Take the lock if it is free, without waiting. True when held afterwards."""
        with self._mutex:
            if self._held:
                return True
            if self._stopped:
                return False
            fd = self._open()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                return False
            self._fd, self._held = fd, True
            return True

    def start(self, on_acquired: Callable[[], None]) -> None:
        """Wait for the lock in a daemon thread; call ``on_acquired()`` (from that thread) once
        it is held. Call once."""
        if self._thread is not None:
            raise RuntimeError("LeaderLock.start called twice")
        self._thread = threading.Thread(
            target=self._wait, args=(on_acquired,), name=f"crdtsync-leader:{self.path.parent.name}", daemon=True
        )
        self._thread.start()

    def _open(self) -> int:
        return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)

    def _wait(self, on_acquired: Callable[[], None]) -> None:
        try:
            fd = self._open()
        except OSError:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # blocks until the leader goes away
        except OSError:
            os.close(fd)
            return
        with self._mutex:
            if self._stopped or self._held:
                # released while we waited: give the lock straight back
                with contextlib.suppress(OSError):
                    fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
                return
            self._fd, self._held = fd, True
        on_acquired()

    def release(self) -> None:
        """Give up leadership (if held) and stop waiting. Idempotent."""
        with self._mutex:
            self._stopped = True
            fd, self._fd = self._fd, None
            self._held = False
        if fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            with contextlib.suppress(OSError):
                os.close(fd)
