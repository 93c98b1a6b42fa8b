"""The HTTP errors sit under crdtsync's root and carry what the query layer reads."""

from __future__ import annotations

import pytest

from crdtsync import ClientError, CrdtsyncError
from crdtsync.errors import AuthError, TransportError, VersionConflictError
from crdtsync.http import errors as http
from crdtsync.query.options import is_client_error

ARGS = {"method": "PUT", "url": "http://api/todos/1", "status": 409, "headers": {"ETag": '"4"'},
        "body": b'{"id": 1}'}


def test_the_tree() -> None:
    for cls in (http.HTTPStatusError, http.HTTPClientError, http.HTTPConflictError, http.HTTPRetryableError,
                http.HTTPTransportError, http.AuthRefreshError):
        assert issubclass(cls, http.HTTPError) and issubclass(cls, CrdtsyncError)
    assert issubclass(http.HTTPClientError, ClientError) and issubclass(http.HTTPConflictError, VersionConflictError)
    assert issubclass(http.HTTPTransportError, TransportError) and issubclass(http.AuthRefreshError, AuthError)
    assert not issubclass(http.HTTPRetryableError, ClientError)


def test_conflict_error_keeps_every_attribute_through_its_bases() -> None:
    err = http.HTTPConflictError("conflict", server_value={"id": 1}, server_version=4, **ARGS)
    assert (err.status, err.method, err.url) == (409, "PUT", "http://api/todos/1")
    assert err.headers == {"etag": '"4"'} and err.json() == {"id": 1}
    assert (err.server_value, err.server_version) == ({"id": 1}, 4)
    assert is_client_error(err)


@pytest.mark.parametrize(("body", "decoded"), [(b"", None), (b"not json", None), (b"[1]", [1])])
def test_status_error_json(body: bytes, decoded: object) -> None:
    err = http.HTTPStatusError("x", method="GET", url="/", status=500, body=body)
    assert err.json() == decoded


def test_retryable_flags() -> None:
    assert is_client_error(http.HTTPClientError("x", method="GET", url="/", status=404))
    assert not is_client_error(http.HTTPRetryableError("x", method="GET", url="/", status=503, retry_after=2))
    assert not is_client_error(http.HTTPTransportError("x"))
    assert is_client_error(http.AuthRefreshError())
    assert not is_client_error(http.AuthRefreshError(retryable=True))
