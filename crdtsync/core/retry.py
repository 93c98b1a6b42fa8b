"""Retry policy (of queries and mutations): whether to retry after the n-th failure, and how long to wait.

Defaults: up to 3 retries; errors the user marks as client errors (``ClientError``, or any
exception with ``retryable = False``, the HTTP 4xx family) are never retried; the delay is
exponential (1 s, 2 s, 4 s, ...) capped at 30 s, with "equal jitter": half the delay is fixed
and the other half is drawn uniformly, from the client's injectable ``random.Random``.
An error with a numeric ``retry_after`` attribute (the server's ``Retry-After``, as
``crdtsync.http`` sets it) raises the delay to at least that many seconds.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TypeAlias

from ..errors import ClientError

BASE_DELAY = 1.0
MAX_DELAY = 30.0

RetryOption: TypeAlias = "bool | int | Callable[[int, BaseException], bool]"
RetryDelay: TypeAlias = "float | Callable[[int, BaseException], float]"


def is_client_error(error: BaseException) -> bool:
    """Errors the user marks as not retryable: :class:`ClientError` or ``retryable = False``."""
    return isinstance(error, ClientError) or getattr(error, "retryable", True) is False


def should_retry(retry: RetryOption, failure_count: int, error: BaseException) -> bool:
    """``failure_count`` counts failures so far (1 after the first attempt failed)."""
    if is_client_error(error):
        return False
    if callable(retry):
        return bool(retry(failure_count, error))
    if retry is True:
        return True
    if retry is False:
        return False
    return failure_count <= int(retry)


def default_retry_delay(failure_count: int, rng: random.Random) -> float:
    """Backoff before retry number ``failure_count`` (1-based), with a cap and equal jitter."""
    full = min(BASE_DELAY * 2.0 ** max(0, failure_count - 1), MAX_DELAY)
    return full / 2 + rng.uniform(0, full / 2)


def retry_delay(option: RetryDelay | None, failure_count: int, error: BaseException, rng: random.Random) -> float:
    if option is None:
        delay = default_retry_delay(failure_count, rng)
    elif callable(option):
        delay = float(option(failure_count, error))
    else:
        delay = float(option)
    hinted = getattr(error, "retry_after", None)
    return max(delay, float(hinted)) if isinstance(hinted, (int, float)) else delay
