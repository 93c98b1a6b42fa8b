"""Network mode: when a fetch or a mutation may run, given the online state.

``ONLINE`` (the default) runs only while the :class:`~crdtsync.core.managers.OnlineManager`
says online and *pauses* otherwise; ``ALWAYS`` ignores the online state; ``OFFLINE_FIRST``
always makes the first attempt and pauses retries while offline (queries; mutations in this
mode never pause).
"""

from __future__ import annotations

import enum


class NetworkMode(enum.Enum):
    ONLINE = "online"  # run only while online; pause otherwise
    ALWAYS = "always"  # ignore the online state
    OFFLINE_FIRST = "offline_first"  # first attempt always runs; retries pause while offline
