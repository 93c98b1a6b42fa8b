"""Token auth with a single-flight refresh on 401.

Rules:

1. Every request carries the current token (``Authorization: Bearer <token>``). A request that
   starts while a refresh is running waits for it and uses the new token.
2. A 401 answer to token ``T`` asks for a token newer than ``T``: when another request has
   already refreshed, that token is used at once; when a refresh is running, the request
   joins it; otherwise it starts one. So however many requests fail together, the refresh
   function runs once, and each of them is sent again once, with the new token.
3. A refresh that raises (or returns an empty token) puts the auth in the *failed* state:
   every waiting request raises :class:`~crdtsync.http.AuthRefreshError`, and so does every
   later request, at once and without touching the network, until :meth:`TokenAuth.set_token`.
   Listeners (``subscribe``) hear ``False`` on failure and ``True`` on ``set_token``;
   :class:`~crdtsync.http.HttpClient` uses them to pause and resume an ``OnlineManager``.

A second 401 to the refreshed token is an ordinary :class:`~crdtsync.http.HTTPClientError`:
there is never a second refresh for one request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from ..core.subscribable import Subscribable
from .errors import AuthRefreshError

RefreshFn = Callable[[], Awaitable[str]]


class TokenAuth(Subscribable[Callable[[bool], None]]):
    """Give it the current token and, to recover from 401s, an async ``refresh()`` that
    returns a new one (it may call the API itself with ``api.request(..., auth=False)``).

    Pass it to ``HttpClient(auth=...)``. After signing the user in again following an
    :class:`~crdtsync.http.AuthRefreshError`, call :meth:`set_token`.
    """

    def __init__(self, token: str | None = None, *, refresh: RefreshFn | None = None,
                 header: str = "Authorization", scheme: str = "Bearer"):
        super().__init__()
        self._token = token
        self._refresh_fn = refresh
        self.header = header
        self.scheme = scheme
        self._refreshing: asyncio.Task[str] | None = None
        self._failure: BaseException | None = None
        self.refresh_count = 0  # refreshes started (for logs and tests)

    @property
    def token(self) -> str | None:
        return self._token

    @property
    def failed(self) -> bool:
        """True after a failed refresh, until :meth:`set_token`."""
        return self._failure is not None

    @property
    def can_refresh(self) -> bool:
        return self._refresh_fn is not None

    def set_token(self, token: str) -> None:
        """Use ``token`` from now on; leaves the failed state and tells listeners ``True``."""
        self._token = token
        was_failed, self._failure = self._failure is not None, None
        if was_failed:
            for listener in list(self._listeners):
                listener(True)

    def header_value(self, token: str) -> str:
        """What the ``header`` carries for ``token`` (``Bearer <token>``, or the bare token
        when ``scheme`` is empty)."""
        return f"{self.scheme} {token}" if self.scheme else token

    async def current(self) -> str | None:
        """The token to send now (after the refresh in flight, if any)."""
        self._raise_if_failed()
        if self._refreshing is not None:
            return await self._join()
        return self._token

    async def newer_than(self, rejected: str | None) -> str:
        """A token other than ``rejected``: the one already refreshed, or a new one."""
        self._raise_if_failed()
        if self._refreshing is None:
            if self._token is not None and self._token != rejected:
                return self._token
            if self._refresh_fn is None:
                raise AuthRefreshError("the server refused the token and no refresh function is set")
            self.refresh_count += 1
            self._refreshing = asyncio.get_running_loop().create_task(self._run(self._refresh_fn))
        return await self._join()

    async def _join(self) -> str:
        task = self._refreshing
        assert task is not None
        try:
            return await asyncio.shield(task)  # one waiter cancelled does not cancel the refresh
        except AuthRefreshError as exc:
            raise AuthRefreshError(str(exc)) from exc.__cause__

    async def _run(self, refresh: RefreshFn) -> str:
        try:
            try:
                token = await refresh()
            except Exception as exc:
                raise AuthRefreshError(f"token refresh failed: {exc!r}") from exc
            if not token:
                raise AuthRefreshError("token refresh returned no token")
        except AuthRefreshError as exc:
            self._failure = exc
            for listener in list(self._listeners):
                listener(False)
            raise
        finally:
            self._refreshing = None
        self._token = token
        return token

    def _raise_if_failed(self) -> None:
        if self._failure is not None:
            raise AuthRefreshError(f"signed out after a failed token refresh: {self._failure}")
