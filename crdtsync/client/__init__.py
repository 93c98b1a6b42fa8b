"""The client: :class:`QueryClient` composes the query cache, the mutation cache, the entity
store and the optimistic overlay over one replica, and resolves every option default."""

from .query_client import QueryClient, RefetchType

__all__ = ["QueryClient", "RefetchType"]
