"""The shared layer under queries and mutations (TanStack query-core's small modules).

- :mod:`~crdtsync.core.subscribable`: a listener registry, the base of caches and observers.
- :mod:`~crdtsync.core.notify`: the notify manager that batches observer notifications.
- :mod:`~crdtsync.core.managers`: injectable online and focus state.
- :mod:`~crdtsync.core.network`: network modes.
- :mod:`~crdtsync.core.retry`: the retry policy (whether, and how long to wait).
- :mod:`~crdtsync.core.retryer`: the one retry/pause/continue loop.
- :mod:`~crdtsync.core.removable`: the one gc timer of cache entries.

Nothing here imports the query (``crdtsync.query``), mutation or normalize packages.
"""

from .managers import FocusManager, OnlineManager
from .network import NetworkMode
from .notify import NotifyManager
from .removable import Removable
from .retry import RetryDelay, RetryOption, is_client_error, retry_delay, should_retry
from .retryer import Retryer
from .subscribable import Subscribable, iterate_latest

__all__ = [
    "FocusManager",
    "NetworkMode",
    "NotifyManager",
    "OnlineManager",
    "Removable",
    "RetryDelay",
    "RetryOption",
    "Retryer",
    "Subscribable",
    "is_client_error",
    "iterate_latest",
    "retry_delay",
    "should_retry",
]
