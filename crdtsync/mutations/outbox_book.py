"""OutboxBook: the mutation cache's bookkeeping of the durable outbox.

It knows which mutations have a row (``persisted``), keeps each row's variables and field bases
current (a resolved conflict, a fetch or a peer's change that moves a base), deletes the row
when its mutation settles, and remembers the last ``SETTLED_KEYS`` settled idempotency keys so
a restored or hydrated state never sends a mutation twice. Owned by
:class:`~crdtsync.mutations.cache.MutationCache`; a failed write of bases is logged, not raised.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import OutboxError
from .outbox import Outbox, OutboxRecord, Synchronous, pack_variables
from .overlay import Leaf, Overlay, decode_bases, encode_bases

if TYPE_CHECKING:
    from ..core.notify import NotifyManager
    from .mutation import Mutation
    from .options import MutationOptions

log = logging.getLogger("crdtsync.mutations")
SETTLED_KEYS = 10_000  # settled idempotency keys remembered (hydrate skips them)


class OutboxBook:
    def __init__(self, overlay: Overlay, lookup: Callable[[int], Mutation | None]) -> None:
        self.overlay = overlay
        self._lookup = lookup
        self.outbox: Outbox | None = None
        self.persisted: set[str] = set()
        self._settled_keys: collections.OrderedDict[str, None] = collections.OrderedDict()
        self.closing = False

    # -- opening -----------------------------------------------------------------------------
    def open(self, outbox: Outbox | str, *, synchronous: Synchronous, held: set[str]) -> list[
            tuple[OutboxRecord, dict[Leaf, Any]]]:
        """Use ``outbox``; return its rows still to restore, with their decoded bases (rows of
        mutations ``held`` already are only marked persisted; rows settled meanwhile go)."""
        if self.outbox is not None:
            raise RuntimeError("this client already uses an outbox")
        self.outbox = outbox if isinstance(outbox, Outbox) else Outbox(outbox, synchronous=synchronous)
        restore = []
        for rec in self.outbox.pending():
            if rec.idempotency_key in held:  # already here (hydrated before the outbox was opened)
                self.persisted.add(rec.idempotency_key)
                continue
            if rec.idempotency_key in self._settled_keys:  # settled meanwhile: the row is stale
                self.outbox.remove(rec.idempotency_key)
                continue
            try:
                bases = decode_bases(rec.bases)
            except ValueError:
                log.warning("outbox row %s: malformed field bases ignored", rec.seq)
                bases = {}
            restore.append((rec, bases))
        return restore

    # -- a new mutation ----------------------------------------------------------------------
    def record(self, ikey: str, opts: MutationOptions, variables: Any, now: float, *, restored: bool,
               store_restored: bool, bases: Mapping[Leaf, Any] | None) -> bool:
        """Bookkeeping for a mutation being built; True when its row was added uncommitted and
        :meth:`commit_new` must store its bases and commit once its optimistic edit ran."""
        outbox = self.outbox
        if restored and store_restored and outbox is not None and opts.mutation_key is not None:
            if all(rec.idempotency_key != ikey for rec in outbox.pending()):
                outbox.add(ikey, opts.mutation_key, opts.scope, variables, now,
                           bases=encode_bases(bases) if bases else None)
            self.persisted.add(ikey)
        elif restored:
            self.persisted.add(ikey)
        elif outbox is not None and opts.durable and opts.mutation_key is not None:
            # The row and the bases of its optimistic edit commit together, after the edit; inside
            # client.batch() the rows of all its mutations commit once, when it ends.
            outbox.add(ikey, opts.mutation_key, opts.scope, variables, now, commit=False)
            self.persisted.add(ikey)
            return True
        elif opts.durable and opts.mutation_key is not None:
            pack_variables(variables)  # fail early: a mutation that could not be persisted later
        return False

    def commit_new(self, mutation: Mutation, notify_manager: NotifyManager) -> None:
        outbox = self.outbox
        if outbox is None:
            return
        own = self.overlay.bases_of(mutation.mutation_id)
        if own:
            outbox.set_bases(mutation.idempotency_key, encode_bases(own))
        if notify_manager.batching:
            notify_manager.schedule(outbox, outbox.commit)
        else:
            outbox.commit()

    # -- keeping rows current ----------------------------------------------------------------
    def refresh_bases(self, leaves: list[Leaf]) -> None:
        """The base of ``leaves`` changed (a fetch or a peer's change landed, or a mutation on
        them succeeded): store the new bases with the durable mutations still pending on them,
        one outbox UPDATE per mutation, all in one commit. Called through the overlay
        (``Overlay.flush_rebased``). Dehydrate needs nothing: it reads the bases from the overlay."""
        if self.outbox is None or self.closing:
            return
        rows = []
        for mid in sorted(self.overlay.sharing(leaves)):
            m = self._lookup(mid)
            if m is not None and m.idempotency_key in self.persisted:
                rows.append((m.idempotency_key, encode_bases(self.overlay.bases_of(mid))))
        try:
            self.outbox.set_bases_many(rows)
        except OutboxError:
            log.exception("cannot store the field bases of %d pending mutations; a rollback after a "
                          "restart may restore older values", len(rows))

    def persist_bases(self, mutation: Mutation) -> None:
        """Store ``mutation``'s current field bases with its outbox row (when it has one)."""
        if self.outbox is None or self.closing or mutation.idempotency_key not in self.persisted:
            return
        try:
            self.outbox.set_bases(mutation.idempotency_key,
                                  encode_bases(self.overlay.bases_of(mutation.mutation_id)))
        except OutboxError:
            log.exception("mutation %s: cannot store its field bases; a rollback after a restart may "
                          "restore older values", mutation.mutation_id)

    def persist_variables(self, mutation: Mutation, variables: Any) -> None:
        if self.outbox is not None and mutation.idempotency_key in self.persisted:
            self.outbox.update_variables(mutation.idempotency_key, variables)

    def forget(self, mutation: Mutation) -> None:
        if self.outbox is not None and mutation.idempotency_key in self.persisted:
            self.outbox.remove(mutation.idempotency_key)
            self.persisted.discard(mutation.idempotency_key)

    # -- settled keys ------------------------------------------------------------------------
    def settled_key(self, idempotency_key: str) -> None:
        """Remember a settled mutation's idempotency key (the last ``SETTLED_KEYS`` of them)."""
        self._settled_keys[idempotency_key] = None
        self._settled_keys.move_to_end(idempotency_key)
        while len(self._settled_keys) > SETTLED_KEYS:
            self._settled_keys.popitem(last=False)

    def knows(self, idempotency_key: str) -> bool:
        """Settled recently, or a row in the outbox."""
        if idempotency_key in self._settled_keys:
            return True
        return self.outbox is not None and any(rec.idempotency_key == idempotency_key
                                               for rec in self.outbox.pending())

    def close_outbox(self) -> None:
        """Close the outbox (its rows are kept for the next run); call after ``closing = True``
        and after the running mutations stopped."""
        if self.outbox is not None:
            self.outbox.close()
