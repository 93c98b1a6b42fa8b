"""Signed access tokens: HMAC-SHA256 over a JSON payload, with doc-id glob grants.

Token format (URL-safe, no padding)::

    base64url(payload JSON) "." base64url(HMAC-SHA256(secret, payload JSON bytes))

Payload: ``{"sub": str, "grants": [[pattern, "read"|"write"], ...], "exp": unix seconds}``.
The HMAC covers the payload bytes exactly as carried in the token (verify, then parse).
A pattern is an ``fnmatch`` glob matched case-sensitively against the document id
(``"notes/*"``, ``"*"``; ``*`` also matches ``/``). ``write`` implies ``read``; the strongest
matching grant wins. ``docs/protocol.md`` §5 has the format byte by byte and a test vector.

Mint with :func:`mint_token` (or ``crdtsync token``), check with :func:`verify_token`, then
ask :meth:`Claims.access` for each document a connection touches. Tokens go in the native
``Hello`` or in the y-websocket URL as ``?token=...`` (y-websocket recomputes URL params on
each reconnect, so a client refreshes its token by changing them).
"""

from __future__ import annotations

import base64
import binascii
import enum
import fnmatch
import hashlib
import hmac
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

from ..errors import AuthError


class Access(enum.IntEnum):
    NONE = 0
    READ = 1
    WRITE = 2


_ACCESS_NAMES = {"read": Access.READ, "write": Access.WRITE}


@dataclass(frozen=True, slots=True)
class Grant:
    pattern: str
    access: Access


@dataclass(frozen=True, slots=True)
class Claims:
    """Who a connection is and what it may touch."""

    subject: str
    grants: tuple[Grant, ...]
    expires: float | None = None

    def access(self, doc_id: str) -> Access:
        """The strongest access any grant gives on ``doc_id``."""
        best = Access.NONE
        for g in self.grants:
            if g.access > best and fnmatch.fnmatchcase(doc_id, g.pattern):
                best = g.access
        return best

    def expired(self, now: float) -> bool:
        return self.expires is not None and now >= self.expires


ANONYMOUS = Claims("anonymous", (Grant("*", Access.WRITE),))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


_B64URL = re.compile(r"[A-Za-z0-9_-]*")


def _unb64(text: str) -> bytes:
    # Strict: the lenient decoder drops unknown characters and accepts "+" and "/", so an
    # altered token string would verify as the original (bad for revocation lists and logs).
    if not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise AuthError("token is not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise AuthError("token is not base64url") from exc


def _sign(secret: bytes, payload: bytes) -> bytes:
    return hmac.new(secret, payload, hashlib.sha256).digest()


def mint_token(
    secret: bytes, subject: str, grants: Iterable[tuple[str, str]], *, expires: float
) -> str:
    """A token for ``subject`` with ``grants`` (``(pattern, "read"|"write")``) until ``expires``."""
    norm = []
    for pattern, access in grants:
        if access not in _ACCESS_NAMES:
            raise ValueError(f"access must be 'read' or 'write', got {access!r}")
        if not isinstance(pattern, str) or not pattern:
            raise ValueError("grant pattern must be a non-empty str")
        norm.append([pattern, access])
    payload = json.dumps(
        {"sub": subject, "grants": norm, "exp": int(expires)}, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")
    return f"{_b64(payload)}.{_b64(_sign(secret, payload))}"


MAX_TOKEN_LENGTH = 8192


def verify_token(secret: bytes, token: str, *, now: float) -> Claims:
    """Check signature and expiry; return the claims. Raises :class:`AuthError` otherwise."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH or token.count(".") != 1:
        raise AuthError("malformed token")
    body, sig = token.split(".")
    payload = _unb64(body)
    if not hmac.compare_digest(_sign(secret, payload), _unb64(sig)):
        raise AuthError("bad token signature")
    try:
        data = json.loads(payload.decode("utf-8"))
        subject = data["sub"]
        expires = data["exp"]
        raw_grants = data["grants"]
        if not isinstance(subject, str) or not isinstance(expires, int) or not isinstance(raw_grants, list):
            raise TypeError("bad field types")
        grants = tuple(Grant(str(p), _ACCESS_NAMES[a]) for p, a in raw_grants)
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise AuthError("malformed token payload") from exc
    claims = Claims(subject, grants, float(expires))
    if claims.expired(now):
        raise AuthError("token expired")
    return claims


def authenticate(secret: bytes | None, token: str | None, *, now: float) -> Claims:
    """Claims for a connection: anonymous read-write when the relay has no secret, else the
    verified token (missing token -> :class:`AuthError`)."""
    if secret is None:
        return ANONYMOUS
    if not token:
        raise AuthError("a token is required")
    return verify_token(secret, token, now=now)
