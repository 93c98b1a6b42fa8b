"""Where a channel's rendezvous files live: one private directory per channel name.

``channel_dir("my-app")`` is ``$XDG_RUNTIME_DIR/crdtsync/<digest>`` when that variable names a
usable directory, else ``<tempdir>/crdtsync-<uid>/<digest>``. The digest (SHA-256 of the name,
16 hex characters) keeps any channel name a safe, short path (Unix socket paths are limited
to about 107 bytes). Directories are created with mode 0700: only the same user can join.

Inside: ``leader.lock`` (held with ``fcntl.flock`` by the leader) and ``hub.sock`` (the
leader's Unix socket). Next: :class:`~crdtsync.offline.channel.LocalChannel`.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

LOCK_NAME = "leader.lock"
SOCKET_NAME = "hub.sock"
MAX_SOCKET_PATH = 100


def base_dir() -> Path:
    """The parent of every channel directory on this machine for this user."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isdir(runtime) and os.access(runtime, os.W_OK):
        return Path(runtime) / "crdtsync"
    return Path(tempfile.gettempdir()) / f"crdtsync-{os.getuid()}"


def channel_dir(name: str, *, base: str | os.PathLike[str] | None = None) -> Path:
    """The directory for channel ``name`` (created, mode 0700). Raises ``ValueError`` for an
    empty name or a base so deep that the socket path would not fit."""
    if not isinstance(name, str) or not name:
        raise ValueError("a channel name is a non-empty str")
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:16]
    root = Path(base) if base is not None else base_dir()
    path = root / digest
    if len(str(path / SOCKET_NAME).encode()) > MAX_SOCKET_PATH:
        raise ValueError(f"channel directory {str(path)!r} is too deep for a Unix socket path")
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path
