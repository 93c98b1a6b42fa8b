"""Moved to :mod:`crdtsync.client` (the client composes the query and mutation layers, so it
sits above both). Re-exported here for old imports; nothing in ``crdtsync.cache`` imports it."""

from ..client.query_client import QueryClient, RefetchType

__all__ = ["QueryClient", "RefetchType"]
