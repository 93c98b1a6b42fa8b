"""The errors of :mod:`crdtsync.http`, all below :class:`~crdtsync.errors.CrdtsyncError`.

The tree is drawn with all the others in ``crdtsync/errors.py``: ``HTTPError`` with
``HTTPStatusError`` (``HTTPClientError``, its ``HTTPConflictError``, and
``HTTPRetryableError``), ``HTTPTransportError`` and ``AuthRefreshError``.

The query layer reads two attributes of these: ``retryable`` (``False`` on client errors,
so ``retry`` does not apply) and ``retry_after`` (seconds; the retry delay is raised to it).
httpx errors are kept as ``__cause__``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..errors import AuthError, ClientError, CrdtsyncError, TransportError, VersionConflictError


class HTTPError(CrdtsyncError):
    """A request made through :class:`~crdtsync.http.HttpClient` failed."""

    def __init__(self, message: str, *, method: str = "", url: str = ""):
        super().__init__(message)
        self.method = method
        self.url = url


class HTTPStatusError(HTTPError):
    """The server answered with an error status. ``body`` is the raw response body;
    :meth:`json` decodes it (``None`` when it is empty or not JSON)."""

    retry_after: float | None = None

    def __init__(self, message: str, *, method: str, url: str, status: int,
                 headers: Mapping[str, str] | None = None, body: bytes = b""):
        super().__init__(message, method=method, url=url)
        self.status: int | None = status  # always set here; typed as ClientError's
        self.headers = {k.lower(): v for k, v in (headers or {}).items()}
        self.body = body

    def json(self) -> Any:
        """The body decoded as JSON, or ``None``."""
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return None


class HTTPClientError(HTTPStatusError, ClientError):
    """A 4xx answer (other than 408 and 429): the request itself is wrong, so it is not
    retried (it is a :class:`~crdtsync.errors.ClientError`)."""


class HTTPConflictError(HTTPClientError, VersionConflictError):
    """A write was refused with 409 Conflict or 412 Precondition Failed.

    Also a :class:`~crdtsync.errors.VersionConflictError`: the mutation layer hands
    ``server_value`` and ``server_version`` to the mutation's ``resolve_conflict`` and emits a
    ``VersionConflictDetected`` event.
    """

    def __init__(self, message: str, *, method: str, url: str, status: int,
                 headers: Mapping[str, str] | None = None, body: bytes = b"",
                 server_value: Any = None, server_version: Any = None):
        super().__init__(message, method=method, url=url, status=status, headers=headers, body=body)
        self.server_value = server_value
        self.server_version = server_version


class HTTPRetryableError(HTTPStatusError):
    """408, 429 or 5xx: worth trying again. ``retry_after`` holds the server's
    ``Retry-After`` in seconds (capped by the client), or ``None`` when it gave none."""

    def __init__(self, message: str, *, method: str, url: str, status: int,
                 headers: Mapping[str, str] | None = None, body: bytes = b"",
                 retry_after: float | None = None):
        super().__init__(message, method=method, url=url, status=status, headers=headers, body=body)
        self.retry_after = retry_after


class HTTPTransportError(HTTPError, TransportError):
    """No answer arrived: the connection could not be made, or a read, write or timeout
    failed. Retried like a 5xx."""


class AuthRefreshError(HTTPError, AuthError):
    """The token refresh failed (the refresh function raised or gave no token).

    Every request waiting for that refresh gets one, and so does every later request until
    :meth:`~crdtsync.http.TokenAuth.set_token`. ``retryable`` is ``True`` only when the client
    has an ``online_manager``: it is set offline, so the retry waits, paused, until
    ``set_token`` sets it online again. Without one, retrying would only fail again.
    """

    def __init__(self, message: str = "token refresh failed", *, retryable: bool = False):
        super().__init__(message)
        self.retryable = retryable
