"""Every exception crdtsync raises on purpose derives from :class:`CrdtsyncError`.

The tree::

    CrdtsyncError
    ├── InvalidKeyError            a query key part is not str, int or a mapping of them
    ├── InvalidValueError          a value cannot be stored in a document (not JSON-like)
    ├── RoutingError               no route maps a key to a document, or a route is malformed
    ├── QueryError
    │   ├── QueryCancelledError    a fetch was cancelled (``cancel_queries``, ``reset_queries``)
    │   └── QueryNotFoundError     ``fetch_query`` without a ``query_fn`` and none registered
    ├── MutationError
    │   ├── MutationNotFoundError  no ``mutation_fn`` for a resumed mutation's key
    │   ├── ConflictError          a server version conflict the resolver could not settle
    │   │   └── VersionConflictError  raise it from a mutation_fn on a 409 (carries the server's side)
    │   ├── MutationCancelledError a mutation was cancelled (``Mutation.cancel``)
    │   └── OutboxError            the durable mutation outbox could not read or write
    ├── ProtocolError              *we* received bytes that break the protocol (local side detects)
    │   ├── FrameError             cannot decode a frame (truncated, wrong type, bad varint)
    │   │   └── InvalidAwarenessError  an awareness payload is malformed or over a limit
    │   │       ├── AwarenessTooLargeError  too many bytes or clients (also a MessageTooLargeError)
    │   │       ├── AwarenessTooDeepError   JSON nested too deep
    │   │       └── AwarenessNotOwnedError  another connection's client ids (``client_ids``)
    │   ├── VersionError           the peer speaks a protocol version we do not
    │   ├── MessageTooLargeError   a frame exceeds a size limit (``size``, ``limit``)
    │   └── UnexpectedMessageError  a well-formed message the connection's state does not allow
    ├── RemoteError                the *peer* told us something failed (a typed error message)
    │   └── PermissionDeniedError  the peer refused an operation (read-only, bad token)
    ├── InvalidStateError          we tried to send what the connection's state forbids (a bug; also a RuntimeError)
    ├── TransportError             the connection failed or closed
    │   └── ConnectionClosedError  the transport is closed (``code``, ``reason``); alias ConnectionClosed
    ├── HTTPError                  crdtsync.http: a request failed (``method``, ``url``)
    │   ├── HTTPStatusError        the server answered 4xx or 5xx (``status``, ``headers``, ``body``)
    │   │   ├── HTTPClientError    a 4xx other than 408, 429; also a ``ClientError``: never retried
    │   │   │   └── HTTPConflictError  a 409 or 412 on a write; also a ``VersionConflictError``
    │   │   └── HTTPRetryableError 408, 429, 5xx: retried, not before ``retry_after``
    │   ├── HTTPTransportError     no answer (connect, read, timeout); also a ``TransportError``
    │   └── AuthRefreshError       a token refresh failed; also an ``AuthError``
    ├── StorageError               a store could not read or write
    │   ├── CorruptStoreError      stored bytes do not decode; the store refuses to overwrite them
    │   └── RoomUnavailableError   a relay room's document could not be loaded
    ├── HydrationError             bytes given to ``hydrate`` are not a dehydrated state
    ├── PostgresError              crdtsync.postgres: the database or its change feed failed
    │   ├── PgOutputError          a pgoutput message does not decode (truncated, unknown type)
    │   ├── SlotBusyError          another bridge holds the replication slot's advisory lock
    │   └── TableMappingError      a declared table is missing, has no primary key, or a column is unknown
    ├── AuthError                  a token is malformed, badly signed or expired
    ├── LimitExceededError         a configured limit (rate, queue, rooms, connections) was hit
    ├── SimulationError            crdtsync.testing was used wrongly (bad argument, unknown peer)
    └── CheckFailedError           a crdtsync.testing check failed (also an ``AssertionError``)
        ├── NotConvergedError      replicas hold different values after sync
        └── AcknowledgedWriteLostError  a write some peer durably acknowledged is gone

    ClientError                    (not a CrdtsyncError: the user's code raises it) a 4xx-like
                                   error a fetch or mutation must not retry

Errors raised by third-party libraries (pycrdt, websockets, sqlite3) are wrapped at the
boundary where crdtsync calls them, with the original kept as ``__cause__``.

User fetch and mutation functions raise whatever they like; those errors are stored on the
query or mutation state unchanged. To mark one as a *client error* that must not be retried
(the HTTP 4xx family), derive it from :class:`ClientError` or set ``retryable = False`` on it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


class CrdtsyncError(Exception):
    """Root of every exception crdtsync raises on purpose."""


class InvalidKeyError(CrdtsyncError, ValueError):
    """A query key is not a non-empty sequence of str, int and mappings of them."""


class InvalidValueError(CrdtsyncError, ValueError):
    """A value cannot be stored in a CRDT document (only JSON-like data can)."""


class RoutingError(CrdtsyncError):
    """A key does not map to a document and path, or a route definition is malformed."""


class QueryError(CrdtsyncError):
    """Base of errors raised by the query layer itself."""


class QueryCancelledError(QueryError):
    """A fetch was cancelled before it finished.

    ``revert`` tells whether the query state was put back as it was before the fetch began;
    ``silent`` tells whether observers should ignore it (a cancellation caused by a newer fetch).
    """

    def __init__(self, message: str = "query cancelled", *, revert: bool = False, silent: bool = False):
        super().__init__(message)
        self.revert = revert
        self.silent = silent


class QueryNotFoundError(QueryError):
    """A query was fetched without a ``query_fn`` and no default is registered for its key."""


class MutationError(CrdtsyncError):
    """Base of errors raised by the mutation layer itself."""


class MutationNotFoundError(MutationError):
    """A paused mutation cannot resume: no ``mutation_fn`` is registered for its key."""


class ConflictError(MutationError):
    """A version conflict reported by the server that the resolver did not settle."""


class VersionConflictError(ConflictError):
    """Raise from a ``mutation_fn`` when the server rejects a stale version (an HTTP 409).

    ``server_value`` and ``server_version`` are handed to the mutation's ``resolve_conflict``.
    """

    def __init__(self, message: str = "version conflict", *, server_value: object = None,
                 server_version: object = None):
        super().__init__(message)
        self.server_value = server_value
        self.server_version = server_version


class MutationCancelledError(MutationError):
    """A mutation was cancelled with ``Mutation.cancel()``; its optimistic edit was rolled back."""


class OutboxError(MutationError):
    """The durable outbox could not store or read a mutation (the sqlite3 error is the cause),
    or a mutation's variables cannot be serialised for it."""


class ProtocolError(CrdtsyncError):
    """The bytes we received break the protocol. Raised by the local side that detects it."""


class FrameError(ProtocolError):
    """A frame cannot be decoded: truncated, unknown message type, or malformed field."""


class VersionError(ProtocolError):
    """The peer announced a protocol version this side does not speak."""


class MessageTooLargeError(ProtocolError):
    """A frame (or a value) is larger than a size limit. ``size`` and ``limit`` are in bytes
    when known."""

    def __init__(self, message: str = "message too large", *, size: int | None = None, limit: int | None = None):
        super().__init__(message)
        self.size = size
        self.limit = limit


class InvalidAwarenessError(FrameError):
    """An awareness payload is malformed: bad encoding, invalid JSON, or a limit is exceeded."""


class AwarenessTooLargeError(InvalidAwarenessError, MessageTooLargeError):
    """The payload has more bytes or more clients than :class:`AwarenessLimits` allows."""


class AwarenessTooDeepError(InvalidAwarenessError):
    """A state nests JSON arrays/objects deeper than :class:`AwarenessLimits` allows."""


class AwarenessNotOwnedError(InvalidAwarenessError):
    """The payload changes or removes the state of a client id another connection introduced
    (and still holds). ``client_ids``: the ids concerned. Nothing of the payload is applied."""

    def __init__(self, message: str, *, client_ids: tuple[int, ...] = ()):
        super().__init__(message)
        self.client_ids = client_ids


class UnexpectedMessageError(ProtocolError):
    """The peer sent a well-formed message its state does not allow (Subscribe before Hello,
    a second Hello, ...)."""


class RemoteError(CrdtsyncError):
    """The peer sent a typed error message. ``code`` is the machine-readable reason;
    ``doc_id`` and ``seq`` (0: none) name the document and the refused write it concerns."""

    def __init__(self, code: str, message: str = "", *, doc_id: str | None = None, seq: int = 0):
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message
        self.doc_id = doc_id
        self.seq = seq


class PermissionDeniedError(RemoteError):
    """The peer refused an operation (for example a write on a read-only connection)."""


class TransportError(CrdtsyncError):
    """The connection failed, was refused, or closed."""


class ConnectionClosedError(TransportError):
    """The transport is closed. ``code``/``reason`` are the websocket close code and reason
    when known (1000 for a normal close, 1006 when the connection dropped)."""

    def __init__(self, message: str = "connection closed", *, code: int | None = None, reason: str = ""):
        super().__init__(message if code is None else f"{message} (code {code}{': ' + reason if reason else ''})")
        self.code = code
        self.reason = reason


ConnectionClosed = ConnectionClosedError  # the name transports used first


class StorageError(CrdtsyncError):
    """A store could not read or write."""


class CorruptStoreError(StorageError):
    """Stored bytes do not decode. The store refuses to write over them."""


class RoomUnavailableError(StorageError):
    """The room's document could not be loaded (store error, corruption or timeout)."""


class HydrationError(CrdtsyncError, ValueError):
    """Bytes given to :func:`crdtsync.offline.hydrate` are not a dehydrated state (truncated,
    another format, an update that does not decode). Nothing was applied."""


class PostgresError(CrdtsyncError):
    """crdtsync.postgres: the database, its setup or its change feed failed (the driver's
    error, if any, is the ``__cause__``)."""


class PgOutputError(PostgresError, ValueError):
    """A pgoutput logical replication message does not decode."""


class SlotBusyError(PostgresError):
    """Another bridge holds the advisory lock of this replication slot (one owner at a time)."""


class TableMappingError(PostgresError, ValueError):
    """A declared table does not exist, has no primary key, or names a column it lacks."""


class AuthError(CrdtsyncError):
    """A token is malformed, wrongly signed, expired, or does not grant the operation."""


class InvalidStateError(CrdtsyncError, RuntimeError):
    """We tried to send something the connection's state does not allow (a bug in the caller)."""


class LimitExceededError(CrdtsyncError):
    """A configured limit (message rate, queue length, rooms, connections) was exceeded."""

    def __init__(self, limit: str, message: str = ""):
        super().__init__(f"{limit}: {message}" if message else limit)
        self.limit = limit


class ClientError(Exception):
    """Base for errors a user's fetch or mutation raises that must not be retried (HTTP 4xx).

    Not a :class:`CrdtsyncError`: it belongs to the user's code. Any exception with a
    ``retryable`` attribute set to ``False`` is treated the same way.
    """

    retryable = False

    def __init__(self, message: str = "", *, status: int | None = None):
        super().__init__(message)
        self.status = status


class SimulationError(CrdtsyncError, ValueError):
    """The testing toolkit was called wrongly: a bad argument, an unknown peer, a run that
    never goes quiet. Raised by :mod:`crdtsync.testing`, never by library code."""


class CheckFailedError(CrdtsyncError, AssertionError):
    """A :mod:`crdtsync.testing` check failed. Also an ``AssertionError``, so pytest shows it
    as a test failure with its message."""


class NotConvergedError(CheckFailedError):
    """Replicas that should have converged hold different values (the message has the diff)."""


class AcknowledgedWriteLostError(CheckFailedError):
    """A write that a peer persisted and confirmed is missing from a replica."""


# -- crdtsync.http (importable from there too) ---------------------------------------------


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
