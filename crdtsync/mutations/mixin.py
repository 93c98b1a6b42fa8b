"""Mutation methods of :class:`~crdtsync.cache.client.QueryClient` (mixed into it)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..cache.query import Query


class MutationsMixin:
    """Extended by the mutation layer. ``write_fetched`` is the hook that writes a fetch result."""

    def write_fetched(self, query: Query, data: Any) -> None:
        """Write a query function's result into the document (origin FETCH).

        The mutation layer overrides this to rebase pending optimistic edits on top of the
        server's answer in the same transaction, so they never flicker.
        """
        from ..origins import FETCH

        query.client.replica.write(query.query_key, data, origin=FETCH)
