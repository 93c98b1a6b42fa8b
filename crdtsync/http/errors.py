"""The errors of :mod:`crdtsync.http`, all below :class:`~crdtsync.errors.CrdtsyncError`.

They are defined, and drawn, with all the others in ``crdtsync/errors.py``: ``HTTPError`` with
``HTTPStatusError`` (``HTTPClientError``, its ``HTTPConflictError``, and
``HTTPRetryableError``), ``HTTPTransportError`` and ``AuthRefreshError``.

The query layer reads two attributes of these: ``retryable`` (``False`` on client errors,
so ``retry`` does not apply) and ``retry_after`` (seconds; the retry delay is raised to it).
httpx errors are kept as ``__cause__``.
"""

from __future__ import annotations

from ..errors import (
    AuthRefreshError,
    HTTPClientError,
    HTTPConflictError,
    HTTPError,
    HTTPRetryableError,
    HTTPStatusError,
    HTTPTransportError,
)

__all__ = ["AuthRefreshError", "HTTPClientError", "HTTPConflictError", "HTTPError", "HTTPRetryableError",
           "HTTPStatusError", "HTTPTransportError"]
