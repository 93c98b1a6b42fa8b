"""Dehydrate and hydrate: a replica's state as bytes, merged (not overwritten) elsewhere.

::

    blob = dehydrate(client)                               # or dehydrate(client, QueryFilters(("todos",)))
    report = hydrate(other_client, blob)                   # CRDT merge: concurrent edits survive

Like TanStack's ``dehydrate``/``hydrate``, but the data travels as Yjs updates: hydrating
*merges* them into the target's documents, so edits the target made meanwhile are kept
(TanStack keeps whichever side has the newer ``dataUpdatedAt`` and drops the other). Query
metadata still follows TanStack's rule: a query's ``data_updated_at`` and status are taken
only when newer than the target's.

What is exported:

- the documents the selected queries live in (all documents when no filter is given; a
  document is exported whole, since an update is per document);
- the metadata of the selected queries that ``should_dehydrate_query`` accepts (successful
  ones by default);
- paused mutations (``include_mutations``): key, scope, variables, idempotency key and the
  base of each field their optimistic edit changed (what a rollback restores: the hydrated
  documents already show the optimistic values). Hydrate recreates them paused, with their
  optimistic edits, through the mutation runtime; one whose idempotency key the target holds
  (mutation cache or outbox) or settled recently is skipped, so nothing is sent twice. Resume
  them with ``await client.resume_paused_mutations()``.

The format is one msgpack array: ``["crdtsync-dehydrated", 1, {doc_id: update}, queries,
mutations]``; a mutation is ``[idempotency_key, key, scope, variables, submitted_at, bases]``
(``bases`` as ``crdtsync.mutations.overlay.encode_bases``; absent in older blobs).
:func:`hydrate` validates everything before applying anything and raises
:class:`~crdtsync.errors.HydrationError` for bad bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgpack
from pycrdt import Doc

from ..errors import CorruptStoreError, CrdtsyncError, HydrationError
from ..keys import QueryKey, normalize_key
from ..mutations.overlay import Leaf, decode_bases, encode_bases
from ..origins import Origin, OriginKind
from ..query.filters import QueryFilters
from . import meta as meta_mod

if TYPE_CHECKING:
    from ..client import QueryClient
    from ..mutations.mutation import Mutation
    from ..query.query import Query

MAGIC = "crdtsync-dehydrated"
VERSION = 1
HYDRATE_ORIGIN = Origin(OriginKind.RESTORE, "hydrate")


@dataclass(frozen=True, slots=True)
class PausedMutation:
    """A mutation that has not reached the server, as carried by a dehydrated state."""

    idempotency_key: str
    mutation_key: QueryKey
    scope: str | None
    variables: Any
    submitted_at: float
    bases: Mapping[Leaf, Any] = field(default_factory=dict)  # what a rollback restores, per field


@dataclass(frozen=True, slots=True)
class DehydratedState:
    """The decoded content of a dehydrated blob (see :func:`decode`)."""

    docs: dict[str, bytes]
    queries: list[meta_mod.QueryMeta]
    mutations: list[PausedMutation]


@dataclass(frozen=True, slots=True)
class HydrateReport:
    docs: int
    queries: int
    mutations: int
    skipped_mutations: int


def _paused(m: Mutation) -> bool:
    return m.state.status == "pending" and m.state.is_paused and m.mutation_key is not None


def dehydrate(
    client: QueryClient,
    filters: QueryFilters | None = None,
    *,
    should_dehydrate_query: Callable[[Query], bool] = meta_mod.default_should_keep,
    include_mutations: bool = True,
) -> bytes:
    """Export ``client``'s state (all of it, or the queries ``filters`` selects) as bytes."""
    metas = meta_mod.capture(client, filters, should_keep=should_dehydrate_query)
    replica = client.replica
    if filters is None:
        doc_ids = replica.doc_ids()
    else:
        doc_ids = sorted({q.route.doc_id for q in client.query_cache.find_all(filters)})
    docs = {d: replica.get_update(d) for d in doc_ids if replica.has_doc(d)}
    mutations: list[list[Any]] = []
    if include_mutations:
        for m in client.mutation_cache.get_all():
            if _paused(m):
                assert m.mutation_key is not None
                mutations.append([m.idempotency_key, list(m.mutation_key), m.scope, m.state.variables,
                                  m.state.submitted_at,
                                  encode_bases(client.overlay.bases_of(m.mutation_id))])
    try:
        return bytes(msgpack.packb([MAGIC, VERSION, docs, meta_mod.pack(metas), mutations], use_bin_type=True))
    except (TypeError, ValueError, OverflowError) as exc:
        raise HydrationError(f"cannot dehydrate: mutation variables are not serialisable: {exc}") from exc


def decode(data: bytes) -> DehydratedState:
    """Parse and validate a dehydrated blob (every update is test-applied to a scratch
    document). Raises :class:`HydrationError`."""
    try:
        raw = msgpack.unpackb(data, raw=False, use_list=True, strict_map_key=True)
    except Exception as exc:
        raise HydrationError(f"not a dehydrated state: {exc}") from exc
    if not (isinstance(raw, list) and len(raw) >= 5 and raw[0] == MAGIC):
        raise HydrationError("not a dehydrated state (bad header)")
    if raw[1] != VERSION:
        raise HydrationError(f"dehydrated state version {raw[1]!r}; this version reads {VERSION}")
    docs_raw, metas_raw, muts_raw = raw[2], raw[3], raw[4]
    if not isinstance(docs_raw, dict) or not isinstance(muts_raw, list):
        raise HydrationError("dehydrated state is malformed")
    docs: dict[str, bytes] = {}
    for doc_id, update in docs_raw.items():
        if not (isinstance(doc_id, str) and doc_id and isinstance(update, bytes)):
            raise HydrationError("a dehydrated document entry is malformed")
        try:
            Doc().apply_update(update)
        except Exception as exc:
            raise HydrationError(f"the update for document {doc_id!r} does not decode: {exc}") from exc
        docs[doc_id] = update
    try:
        metas = meta_mod.unpack(metas_raw)
    except CorruptStoreError as exc:
        raise HydrationError(str(exc)) from exc
    mutations: list[PausedMutation] = []
    for item in muts_raw:
        try:
            ikey, key, scope, variables, at = item[:5]
            if not isinstance(ikey, str) or not (scope is None or isinstance(scope, str)):
                raise TypeError("bad idempotency key or scope")
            bases = decode_bases(item[5] if len(item) > 5 else None)  # absent in older blobs
            mutations.append(PausedMutation(ikey, normalize_key(key), scope, variables, float(at), bases))
        except (TypeError, ValueError, CrdtsyncError) as exc:
            raise HydrationError(f"a dehydrated mutation is malformed: {exc}") from exc
    return DehydratedState(docs, metas, mutations)


def hydrate(client: QueryClient, data: bytes | DehydratedState) -> HydrateReport:
    """Merge a dehydrated state into ``client``: documents by CRDT merge, query metadata when
    newer, paused mutations recreated paused (not twice). Raises :class:`HydrationError` for bad
    bytes, before changing anything."""
    state = data if isinstance(data, DehydratedState) else decode(data)
    replica = client.replica
    with client.notify_manager.batch():
        with replica.batch(origin=HYDRATE_ORIGIN):
            for doc_id, update in state.docs.items():
                replica.apply_update(doc_id, update, origin=HYDRATE_ORIGIN)
        restored = meta_mod.restore(client, state.queries, only_newer=True)
    added = skipped = 0
    if state.mutations:
        for pm in state.mutations:
            # held (cache or outbox) or recently settled here: never sent twice
            if client.mutation_cache.is_known(pm.idempotency_key):
                skipped += 1
                continue
            opts: dict[str, Any] = {"mutation_key": pm.mutation_key}
            if pm.scope is not None:
                opts["scope"] = pm.scope
            client.build_mutation(pm.variables, opts, restored_key=pm.idempotency_key, store_restored=True,
                                  bases=pm.bases)
            added += 1
    return HydrateReport(len(state.docs), len(restored), added, skipped)
