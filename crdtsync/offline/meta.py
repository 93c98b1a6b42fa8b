"""Query metadata that travels with documents: :class:`QueryMeta`, its codec, and restore.

A query's *data* lives in the replica's documents and is restored by merging their updates.
What the documents do not hold is the metadata TanStack persists beside the data: when it was
fetched (``data_updated_at``), its ``status``, whether it was invalidated. :func:`capture`
takes it from a client's query cache; :func:`restore` builds those queries in another client
(or after a restart) and dispatches ``SetState`` so observers see cached data, with the right
staleness, before any network.

The codec is msgpack: ``[query_key, status, data_updated_at, is_invalidated]`` per query.
Bad bytes raise :class:`~crdtsync.errors.CorruptStoreError`, never another exception.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgpack

from ..errors import CorruptStoreError, CrdtsyncError
from ..keys import QueryKey, hash_key, normalize_key
from ..query.filters import QueryFilters
from ..query.options import QueryOptions
from ..query.state import SetState
from ..values import MISSING

if TYPE_CHECKING:
    from ..client import QueryClient
    from ..query.query import Query

_STATUSES = ("pending", "error", "success")


@dataclass(frozen=True, slots=True)
class QueryMeta:
    """What is kept of one query besides its data."""

    query_key: QueryKey
    status: str
    data_updated_at: float
    is_invalidated: bool = False

    @property
    def query_hash(self) -> str:
        return hash_key(self.query_key)


def default_should_keep(query: Query) -> bool:
    """Keep successful queries (TanStack's default for dehydration and persistence)."""
    return query.state.status == "success" and query.state.has_data


def capture(client: QueryClient, filters: QueryFilters | None = None, *,
            should_keep: Callable[[Query], bool] = default_should_keep) -> list[QueryMeta]:
    """The metadata of every query in ``client``'s cache that matches ``filters`` and
    ``should_keep``."""
    out: list[QueryMeta] = []
    for query in client.query_cache.find_all(filters):
        if should_keep(query):
            st = query.state
            out.append(QueryMeta(query.query_key, st.status, st.data_updated_at, st.is_invalidated))
    return out


def pack(metas: Sequence[QueryMeta]) -> list[Any]:
    """A msgpack-able list for ``metas``."""
    return [[list(m.query_key), m.status, m.data_updated_at, m.is_invalidated] for m in metas]


def unpack(raw: Any) -> list[QueryMeta]:
    """The inverse of :func:`pack`; :class:`CorruptStoreError` on anything malformed."""
    if not isinstance(raw, list):
        raise CorruptStoreError("query metadata is not a list")
    out: list[QueryMeta] = []
    for item in raw:
        if not (isinstance(item, list) and len(item) >= 4):
            raise CorruptStoreError("a query metadata entry is malformed")
        key, status, at, invalidated = item[:4]
        try:
            nkey = normalize_key(key)
        except CrdtsyncError as exc:
            raise CorruptStoreError(f"a stored query key is invalid: {exc}") from exc
        if status not in _STATUSES or type(at) not in (int, float) or not math.isfinite(at):
            raise CorruptStoreError("a query metadata entry has a bad status or timestamp")
        out.append(QueryMeta(nkey, status, float(at), bool(invalidated)))
    return out


def encode_metas(metas: Sequence[QueryMeta]) -> bytes:
    return bytes(msgpack.packb(pack(metas), use_bin_type=True))


def decode_metas(data: bytes) -> list[QueryMeta]:
    try:
        raw = msgpack.unpackb(data, raw=False, use_list=True, strict_map_key=True)
    except Exception as exc:
        raise CorruptStoreError(f"query metadata does not decode: {exc}") from exc
    return unpack(raw)


def restore(client: QueryClient, metas: Iterable[QueryMeta], *, only_newer: bool = True) -> list[Query]:
    """Build each query in ``client``'s cache and set its metadata (data comes from the replica).

    A query whose data is not in the replica is skipped. With ``only_newer`` (hydrate's rule), a
    query the cache already holds keeps its metadata unless the incoming ``data_updated_at`` is
    newer. Returns the queries whose state was set.
    """
    done: list[Query] = []
    with client.notify_manager.batch():
        for meta in metas:
            if client.replica.read(meta.query_key) is MISSING:
                continue
            query = client.query_cache.find(meta.query_key)
            if query is None:
                defaults = client.get_query_defaults(meta.query_key)
                fields = {f.name for f in dataclasses.fields(QueryOptions)} - {"query_key"}
                opts = QueryOptions(query_key=meta.query_key, **{k: v for k, v in defaults.items() if k in fields})
                query = client.query_cache.build(client, opts)
            elif only_newer and query.state.data_updated_at >= meta.data_updated_at:
                continue
            data = client.replica.read(meta.query_key)
            st = query.state
            new = dataclasses.replace(
                st,
                data=data if not st.has_data else st.data,
                status="success" if meta.status == "success" else st.status if st.has_data else "pending",
                data_updated_at=meta.data_updated_at,
                is_invalidated=meta.is_invalidated,
            )
            query.dispatch(SetState(new))
            done.append(query)
    return done
