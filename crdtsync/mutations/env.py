"""MutationEnv: what mutations need from the client that owns them, injected by it.

The mutation layer never reaches into the client or the query layer: the client builds one
``MutationEnv`` and hands it to its :class:`~crdtsync.mutations.cache.MutationCache`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..clock import Clock
from ..core.managers import OnlineManager
from ..core.notify import NotifyManager
from ..replica import Replica
from .overlay import Overlay

if TYPE_CHECKING:
    from ..client import QueryClient


@dataclass(frozen=True)
class MutationEnv:
    client: QueryClient | Any  # passed to mutation functions (MutationFunctionContext.client), nothing else
    replica: Replica
    overlay: Overlay
    clock: Clock
    rng: random.Random
    notify_manager: NotifyManager
    online_manager: OnlineManager
    is_normalized: Callable[[Any], bool]  # is this query key a normalized query (holding entity ids)?
