"""HttpClient: one API's base URL, headers, auth and hooks, and the query and mutation
functions built from them.

Typical use::

    api = HttpClient("https://api.example.com", auth=TokenAuth(token, refresh=refresh),
                     online_manager=client.online_manager)
    todo = await client.fetch_query(("todos", 5), api.query("/todos/{1}"))
    client.mutate({"id": 5, "title": "oat milk", "version": 3},
                  mutation_fn=api.mutation("PATCH", "/todos/{id}", if_match="version"))

What a request goes through, in order: the auth header (waiting for a refresh in flight),
the ``before_request`` hooks, the network, the ``after_response`` hooks, and on a 401 one
token refresh (shared by every request that got a 401, see :mod:`crdtsync.http.auth`) and
one more try. An answer of 400 or more raises the typed error of :mod:`crdtsync.http.classify`;
retrying is left to the query and mutation layers (``retry``, ``retry_delay``,
``network_mode``), which read the error's ``retryable`` and ``retry_after``. Cancelling the
query or mutation cancels the request and closes its connection.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeAlias

import httpx

from ..clock import Clock, SystemClock
from ..mutations import MutationFunctionContext
from ..mutations.options import MutationFn
from ..query import OnlineManager, QueryFunctionContext
from ..query.options import QueryFn
from .auth import TokenAuth
from .classify import status_error
from .errors import AuthRefreshError, HTTPConflictError, HTTPError, HTTPStatusError, HTTPTransportError
from .paths import entity_tag, mutation_path, query_path
from .validators import ValidatorStore

RequestHook: TypeAlias = Callable[[httpx.Request], "Awaitable[None] | None"]
ResponseHook: TypeAlias = Callable[[httpx.Response], "Awaitable[None] | None"]
Parse: TypeAlias = Callable[[httpx.Response], Any]
Params: TypeAlias = "Mapping[str, Any] | Callable[[QueryFunctionContext], Mapping[str, Any]] | None"
IfMatch: TypeAlias = "str | Callable[[Any], Any] | None"

_BODYLESS = frozenset({"GET", "HEAD", "DELETE", "OPTIONS"})


def parse_json(response: httpx.Response) -> Any:
    """The default parser: the body as JSON, ``None`` for an empty body (a 204)."""
    return response.json() if response.content else None


class HttpClient:
    """An HTTP API seen through crdtsync. Build query functions with :meth:`query` and
    mutation functions with :meth:`mutation`; send anything else with :meth:`request`.

    ``auth``: a :class:`TokenAuth`. ``online_manager``: the ``QueryClient``'s; when a token
    refresh fails, the client sets it offline, so queries and mutations *pause* instead of
    failing again and again, and sets it online again on ``auth.set_token``.
    ``max_retry_after`` caps the server's ``Retry-After`` (seconds). ``clock`` turns
    ``Retry-After`` dates into delays. ``http`` replaces the ``httpx.AsyncClient`` built here.
    Close with ``await api.aclose()`` or ``async with``.
    """

    def __init__(
        self,
        base_url: str = "",
        *,
        headers: Mapping[str, str] | None = None,
        auth: TokenAuth | None = None,
        before_request: Sequence[RequestHook] = (),
        after_response: Sequence[ResponseHook] = (),
        timeout: float | httpx.Timeout = 30.0,
        online_manager: OnlineManager | None = None,
        clock: Clock | None = None,
        max_retry_after: float = 300.0,
        max_validators: int = 1024,
        http: httpx.AsyncClient | None = None,
    ):
        self.http = http if http is not None else httpx.AsyncClient(base_url=base_url, headers=headers,
                                                                     timeout=timeout)
        self.auth = auth
        self.before_request: list[RequestHook] = list(before_request)
        self.after_response: list[ResponseHook] = list(after_response)
        self.online_manager = online_manager
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.max_retry_after = max_retry_after
        self.validators = ValidatorStore(max_validators)
        self._paused_online = False
        self._unsubscribe = auth.subscribe(self._on_auth) if auth is not None and online_manager is not None else None

    async def aclose(self) -> None:
        """Close the connections (and stop following the auth's state)."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        await self.http.aclose()

    async def __aenter__(self) -> HttpClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- requests ----------------------------------------------------------------------------
    async def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                      json: Any = None, headers: Mapping[str, str] | None = None,
                      auth: bool = True) -> httpx.Response:
        """Send one request and return its answer when below 400 (304 included); raise the
        typed error otherwise. ``auth=False`` sends no token (for the refresh call itself)."""
        method = method.upper()
        token_auth = self.auth if auth else None
        token = await self._auth_step(token_auth.current()) if token_auth is not None else None
        response = await self._send(method, path, params, json, headers, token)
        if response.status_code == 401 and token_auth is not None and token_auth.can_refresh:
            token = await self._auth_step(token_auth.newer_than(token))
            response = await self._send(method, path, params, json, headers, token)
        if response.status_code >= 400:
            raise status_error(method=method, url=str(response.request.url), status=response.status_code,
                               headers=response.headers, body=response.content, now=self.clock.now(),
                               max_retry_after=self.max_retry_after)
        return response

    async def get(self, path: str, *, params: Mapping[str, Any] | None = None,
                  query_key: Sequence[Any] | None = None, parse: Parse | None = None) -> Any:
        """GET and parse. With ``query_key``, conditionally: a 304 returns the body kept from
        the last 200 for that key and URL (see :mod:`crdtsync.http.validators`)."""
        target = str(httpx.URL(path, params=params))
        validator = self.validators.get(query_key, target) if query_key is not None else None
        headers = validator.request_headers() if validator is not None else None
        response = await self.request("GET", path, params=params, headers=headers)
        if response.status_code == 304:
            if validator is None:
                raise HTTPError(f"GET {target}: 304 to an unconditional request", method="GET", url=target)
            return validator.data
        data = (parse or parse_json)(response)
        if query_key is not None:
            self.validators.store(query_key, target, response.headers, data)
        return data

    def etag(self, query_key: Sequence[Any]) -> str | None:
        """The ``ETag`` of the last 200 for ``query_key`` (for ``if_match=``), or ``None``."""
        return self.validators.etag(query_key)

    # -- query and mutation functions ---------------------------------------------------------
    def query(self, path: str | None = None, *, params: Params = None, parse: Parse | None = None,
              conditional: bool = True) -> QueryFn:
        """A query function that GETs ``path`` filled from the query key (see
        :mod:`crdtsync.http.paths`; without ``path`` the key is the path). ``params``: query
        parameters, or a function of the ``QueryFunctionContext`` (infinite queries read
        ``ctx.page_param`` there). ``conditional``: revalidate with ETag / Last-Modified.

        Pass it to ``fetch_query``, ``observe``, ``set_query_defaults`` or
        ``fetch_infinite_query``.
        """

        async def query_fn(ctx: QueryFunctionContext) -> Any:
            url_path, key_params = query_path(path, ctx.query_key, ctx.page_param)
            extra = params(ctx) if callable(params) else params
            merged = {**key_params, **(extra or {})}
            return await self.get(url_path, params=merged or None,
                                  query_key=ctx.query_key if conditional else None, parse=parse)

        return query_fn

    def mutation(self, method: str, path: str, *, body: Callable[[Any], Any] | None = None,
                 if_match: IfMatch = None, parse: Parse | None = None,
                 refetch_on_conflict: bool = False) -> MutationFn:
        """A mutation function that sends ``method`` to ``path`` filled from the variables.

        The body is the variables as JSON (none for DELETE), or ``body(variables)``. Every
        call sends the mutation's ``Idempotency-Key``. ``if_match``: the name of the
        variables' version field, or a function of the variables (``lambda v:
        api.etag(("todos", v["id"]))``); its value goes out as ``If-Match``. A 409 or 412
        raises :class:`~crdtsync.http.HTTPConflictError` with the server's current value: the
        409 body when it is JSON (and ``refetch_on_conflict`` is off), else a GET of the same
        path. Give the mutation a ``resolve_conflict`` (for example
        :func:`~crdtsync.http.rebase_on_server`) to retry with the server's version.
        """
        method = method.upper()

        async def mutation_fn(variables: Any, ctx: MutationFunctionContext) -> Any:
            url = mutation_path(path, variables)
            default = None if method in _BODYLESS else variables
            payload = body(variables) if body is not None else default
            headers = {"Idempotency-Key": ctx.idempotency_key}
            version = if_match(variables) if callable(if_match) else _field(variables, if_match)
            if version is not None:
                headers["If-Match"] = entity_tag(version)
            try:
                response = await self.request(method, url, json=payload, headers=headers)
            except HTTPConflictError as err:
                await self._describe_conflict(err, url, if_match, refetch_on_conflict)
                raise
            return (parse or parse_json)(response)

        return mutation_fn

    # -- internals -----------------------------------------------------------------------------
    async def _send(self, method: str, path: str, params: Mapping[str, Any] | None, json: Any,
                    headers: Mapping[str, str] | None, token: str | None) -> httpx.Response:
        request = self.http.build_request(method, path, params=params, json=json, headers=headers)
        if self.auth is not None and token is not None:
            request.headers[self.auth.header] = self.auth.header_value(token)
        for hook in self.before_request:
            await _maybe_await(hook(request))
        try:
            response = await self.http.send(request)
        except httpx.TransportError as exc:
            raise HTTPTransportError(f"{method} {request.url}: {exc!r}", method=method,
                                     url=str(request.url)) from exc
        for after in self.after_response:
            await _maybe_await(after(response))
        return response

    async def _auth_step(self, step: Awaitable[str | None]) -> str | None:
        try:
            return await step
        except AuthRefreshError as exc:
            if self.online_manager is not None:
                self._on_auth(False)  # again, should something have set it online meanwhile
                exc.retryable = True  # the retry waits, paused, for the network to be "online"
            raise

    def _on_auth(self, ok: bool) -> None:
        om = self.online_manager
        assert om is not None
        if not ok and om.is_online():
            self._paused_online = True
            om.set_online(False)
        elif ok and self._paused_online:
            self._paused_online = False
            om.set_online(True)

    async def _describe_conflict(self, err: HTTPConflictError, url: str, if_match: IfMatch,
                                 refetch: bool) -> None:
        value = None if refetch else err.json()
        etag = err.headers.get("etag")
        if value is None:
            try:
                current = await self.request("GET", url)
            except HTTPStatusError as gone:
                if gone.status not in (404, 410):
                    raise
            else:
                value = parse_json(current)
                etag = current.headers.get("etag") or etag
        err.server_value = value
        field_version = _field(value, if_match) if isinstance(if_match, str) else None
        err.server_version = field_version if field_version is not None else etag


def _field(variables: Any, name: str | None) -> Any:
    if name is None or not isinstance(variables, Mapping):
        return None
    return variables.get(name)


async def _maybe_await(result: Awaitable[None] | None) -> None:
    if inspect.isawaitable(result):
        await result
