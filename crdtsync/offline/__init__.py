"""Offline-first replicas: persistence, dehydrate/hydrate, cross-process sync, status.

- :class:`LocalChannel`: processes on one machine that open the same channel name stay
  converged over a Unix socket, with a leader elected by file lock (``channel.py``).
"""

from .channel import ChannelLimits, ChannelStatus, LocalChannel, Role
from .paths import channel_dir

__all__ = ["ChannelLimits", "ChannelStatus", "LocalChannel", "Role", "channel_dir"]
