"""crdtsync.http: an HTTP API as a data source for queries and mutations (extra ``crdtsync[http]``).

Start with :class:`HttpClient`; build query functions with ``api.query(path)`` and mutation
functions with ``api.mutation(method, path)``, one line each::

    api = HttpClient("https://api.example.com", auth=TokenAuth(token, refresh=refresh),
                     online_manager=client.online_manager)
    todo = await client.fetch_query(("todos", 5), api.query("/todos/{1}"))

Modules, one concept each: ``client`` (requests, hooks, query and mutation functions),
``auth`` (token refresh on 401, one in flight), ``classify`` (status to error, Retry-After),
``validators`` (ETag / Last-Modified per query key), ``paths`` (URL templates),
``conflicts`` (resolvers for 409 / 412), ``errors``. See docs/http.md.
"""

from __future__ import annotations

try:
    import httpx  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError("crdtsync.http needs httpx: pip install 'crdtsync[http]'") from exc

from .auth import TokenAuth
from .classify import is_retryable_status, parse_retry_after, status_error
from .client import HttpClient, parse_json
from .conflicts import rebase_on_server
from .errors import (
    AuthRefreshError,
    HTTPClientError,
    HTTPConflictError,
    HTTPError,
    HTTPRetryableError,
    HTTPStatusError,
    HTTPTransportError,
)
from .paths import entity_tag, mutation_path, query_path
from .validators import Validator, ValidatorStore

__all__ = [
    "AuthRefreshError",
    "HTTPClientError",
    "HTTPConflictError",
    "HTTPError",
    "HTTPRetryableError",
    "HTTPStatusError",
    "HTTPTransportError",
    "HttpClient",
    "TokenAuth",
    "Validator",
    "ValidatorStore",
    "entity_tag",
    "is_retryable_status",
    "mutation_path",
    "parse_json",
    "parse_retry_after",
    "query_path",
    "rebase_on_server",
    "status_error",
]
