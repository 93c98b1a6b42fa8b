"""Offline-first replicas: persistence, dehydrate/hydrate, cross-process sync, status.

- :class:`ReplicaPersister` (``persist.py``): documents and query metadata in one SQLite
  file, restored before any network; throttled writes, ``max_age``, ``buster``, compaction,
  corrupt files quarantined.
- :func:`dehydrate` / :func:`hydrate` (``dehydrate.py``): a client's state as bytes, merged
  by CRDT into another client, with paused mutations.
- :class:`LocalChannel` (``channel.py``): processes on one machine that open the same
  channel name stay converged over a Unix socket; a leader elected by file lock runs the hub
  (and the one relay connection: ``leader_task=relay_leader_task(...)``, ``relay_link.py``).
- :class:`ConnectionMonitor` (``status.py``): online / degraded / offline and the last sync
  time, from the channel, the relay and fetch failures; drives the client's online manager.

``docs/offline.md`` walks through all four.
"""

from .channel import ChannelLimits, ChannelStatus, LocalChannel, Role
from .dehydrate import DehydratedState, HydrateReport, PausedMutation, dehydrate, hydrate
from .meta import QueryMeta
from .paths import channel_dir
from .persist import ReplicaPersister, RestoreOutcome, RestoreReport
from .status import ConnectionMonitor, Connectivity, ConnectivityStatus, classify

__all__ = [
    "ChannelLimits",
    "ChannelStatus",
    "ConnectionMonitor",
    "Connectivity",
    "DehydratedState",
    "HydrateReport",
    "LocalChannel",
    "PausedMutation",
    "QueryMeta",
    "ReplicaPersister",
    "RestoreOutcome",
    "RestoreReport",
    "Role",
    "ConnectivityStatus",
    "channel_dir",
    "classify",
    "dehydrate",
    "hydrate",
]
