"""Error classification: which status becomes which error. Pure functions only.

=============  ==========================  ===================================================
status         error                       retried by the query and mutation layers
=============  ==========================  ===================================================
409, 412       HTTPConflictError           no; on a write it is a version conflict instead
other 4xx      HTTPClientError             never (a ``ClientError``)
408, 429, 5xx  HTTPRetryableError          per ``retry``, waiting at least ``Retry-After``
=============  ==========================  ===================================================

``Retry-After`` is either a number of seconds or an HTTP date; both become seconds from
``now``, at least 0 and at most ``cap``. Call :func:`status_error` with what the response
carried; :class:`~crdtsync.http.HttpClient` does it for every answer of 400 or more.
"""

from __future__ import annotations

import email.utils
import math
from collections.abc import Mapping

from .errors import HTTPClientError, HTTPConflictError, HTTPRetryableError, HTTPStatusError

CONFLICT_STATUSES = frozenset({409, 412})
RETRYABLE_4XX = frozenset({408, 429})
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def is_retryable_status(status: int) -> bool:
    """408, 429 and every 5xx."""
    return status in RETRYABLE_4XX or status >= 500


def parse_retry_after(value: str | None, *, now: float, cap: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (seconds or HTTP date), within ``[0, cap]``.

    ``None`` when the header is missing or unreadable.
    """
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:  # RFC 9110 dates are GMT; parsedate gives naive for "-0000"
            return None
        seconds = when.timestamp() - now
    if math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), cap)


def status_error(*, method: str, url: str, status: int, headers: Mapping[str, str], body: bytes,
                 now: float, max_retry_after: float) -> HTTPStatusError:
    """The error for an answer of 400 or more (see the table above)."""
    message = f"{method} {url}: HTTP {status}"
    if status in CONFLICT_STATUSES and method.upper() not in READ_METHODS:
        return HTTPConflictError(message, method=method, url=url, status=status, headers=headers, body=body)
    if is_retryable_status(status):
        lowered = {k.lower(): v for k, v in headers.items()}
        after = parse_retry_after(lowered.get("retry-after"), now=now, cap=max_retry_after)
        return HTTPRetryableError(message, method=method, url=url, status=status, headers=headers,
                                  body=body, retry_after=after)
    return HTTPClientError(message, method=method, url=url, status=status, headers=headers, body=body)
