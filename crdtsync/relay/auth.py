"""Tokens and access for the relay: the format and the checks live in
:mod:`crdtsync.protocol.token` (they are part of the protocol a client implements); this module
keeps the relay's import path."""

from __future__ import annotations

from ..protocol.token import (
    ANONYMOUS,
    MAX_TOKEN_LENGTH,
    Access,
    Claims,
    Grant,
    authenticate,
    mint_token,
    verify_token,
)

__all__ = ["ANONYMOUS", "MAX_TOKEN_LENGTH", "Access", "Claims", "Grant", "authenticate", "mint_token", "verify_token"]
