"""crdtsync.protocol.token: the token format of docs/protocol.md §5, byte for byte, with its
test vector, and the grant-matching rules."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from crdtsync.errors import AuthError
from crdtsync.protocol.token import Access, mint_token, verify_token

SECRET = b"0123456789abcdef"
PAYLOAD = b'{"sub":"ana","grants":[["notes/*","write"],["*","read"]],"exp":1767225600}'
VECTOR = ("eyJzdWIiOiJhbmEiLCJncmFudHMiOltbIm5vdGVzLyoiLCJ3cml0ZSJdLFsiKiIsInJlYWQiXV0sImV4cCI6MTc2NzIyNTYwMH0"
          ".WqeT0mqe87Ndl8_m4uQX9JboXQIOkpZUhKqnINzn7bU")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_the_documented_vector_is_what_mint_token_makes() -> None:
    assert mint_token(SECRET, "ana", [("notes/*", "write"), ("*", "read")], expires=1767225600) == VECTOR


def test_the_vector_built_from_the_spec_alone() -> None:
    sig = hmac.new(SECRET, PAYLOAD, hashlib.sha256).digest()
    assert f"{_b64(PAYLOAD)}.{_b64(sig)}" == VECTOR
    assert sig.hex() == "5aa793d26a9ef3b35d97cfe6e2e417f496e85d020e92965484aaa720dce7edb5"


def test_the_signature_covers_the_payload_bytes_as_sent_not_a_reserialisation() -> None:
    spaced = b'{"sub": "ana", "grants": [["*", "write"]], "exp": 1767225600}'  # valid JSON, not compact
    token = f"{_b64(spaced)}.{_b64(hmac.new(SECRET, spaced, hashlib.sha256).digest())}"
    assert verify_token(SECRET, token, now=0).subject == "ana"  # another client's JSON style verifies
    compact_sig = hmac.new(SECRET, b'{"sub":"ana","grants":[["*","write"]],"exp":1767225600}', hashlib.sha256)
    with pytest.raises(AuthError):
        verify_token(SECRET, f"{_b64(spaced)}.{_b64(compact_sig.digest())}", now=0)


def test_padding_and_standard_base64_are_refused() -> None:
    body, sig = VECTOR.split(".")
    for bad in (f"{body}==.{sig}", f"{body}.{sig}=", VECTOR.replace("_", "/")):
        with pytest.raises(AuthError):
            verify_token(SECRET, bad, now=0)


def test_expiry_is_inclusive_of_exp() -> None:
    assert verify_token(SECRET, VECTOR, now=1767225599).subject == "ana"
    with pytest.raises(AuthError, match="expired"):
        verify_token(SECRET, VECTOR, now=1767225600)


def test_grants_are_fnmatch_globs_whose_star_crosses_slashes_and_the_strongest_wins() -> None:
    claims = verify_token(SECRET, VECTOR, now=0)
    assert claims.access("notes/1") is Access.WRITE
    assert claims.access("notes/a/b") is Access.WRITE  # "*" matches "/" too
    assert claims.access("Notes/1") is Access.READ  # case-sensitive; "*" gives read
    assert claims.access("") is Access.READ
