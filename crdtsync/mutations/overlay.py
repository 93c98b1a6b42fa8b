"""The overlay: pending optimistic edits as ordered layers over the server's state, per field.

Every field (a *leaf*: document id plus path) that a pending mutation changed optimistically
has a **base** (the value underneath every pending edit: what the server or a peer last said)
and a **stack** of entries, one per pending mutation that changed it, in the order they were
made. The document always shows the *visible* value: the top entry's value, unless a
concurrent change overrode the stack, in which case the base.

- :meth:`Overlay.rollback` removes one mutation's entries. A field changes back only when that
  mutation's value is the one on screen, and then to what would be there had the mutation
  never happened (an earlier pending edit, or the newest base). Fields that other mutations,
  peers or the server changed afterwards are left alone, so a rollback never overwrites newer
  data. Only fields the mutation actually changed are tracked: its edit of ``title`` never
  touches ``done``.
- :meth:`Overlay.settle` removes a succeeded mutation's entries without writing anything (the
  value on screen is what the server accepted), and makes it the new base.
- :meth:`Overlay.rebase_fetched` is called with a fetch result before it is written: pending
  fields keep the user's values (the fetched value becomes their base), so a fetch that started
  before a mutation, or returns while it is pending, never makes an optimistic value revert.
- A change by a peer to a field with a pending edit is seen through ``Replica.watch``; fetch
  results through :meth:`rebase_fetched`. Both report a
  :class:`~crdtsync.mutations.conflicts.FieldConflict` and apply the conflict policy.
- Whenever the base of a pending field changes (a fetch, a peer, a local write, a settled
  mutation), the field is remembered until :meth:`flush_rebased` hands the changed fields to
  ``on_rebase`` in one call: the runtime then rewrites the stored bases of the durable mutations
  on them (one outbox UPDATE per mutation), so a rollback after a restart restores the newest
  base. :meth:`rebase_fetched`, :meth:`restoring` and :meth:`settle` flush themselves; changes
  seen by a watcher are flushed by whoever calls :meth:`flush_rebased` after the transaction
  (the runtime does it from ``Replica.on_update``).

Granularity: a mapping written where a map already exists is split into its changed keys
(recursively, down to the route's depth); anything else (a list, a plain value, a mapping
where nothing was before) is one leaf. Next: see :class:`~crdtsync.mutations.optimistic.OptimisticTx`,
which is how a mutation's ``optimistic`` function writes through this class.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from pycrdt import Map

from ..keys import QueryKey
from ..origins import FETCH, Origin, OriginKind, mutation_origin
from ..replica import Replica, Route
from ..values import MISSING, check_value, decode, strict_equal
from .conflicts import ConflictPolicy, ConflictSource, FieldConflict, policy_name

Leaf = tuple[str, tuple[str, ...]]
log = logging.getLogger("crdtsync.mutations")


def rollback_origin(mutation_id: int) -> Origin:
    return Origin(OriginKind.ROLLBACK, str(mutation_id))


@dataclass(eq=False)
class _Entry:
    mutation_id: int
    key: QueryKey
    value: Any  # MISSING: the mutation deleted the field
    depth: int | None
    overridden: bool = False
    rewrites: int = 0


PolicyFor = Callable[[int, QueryKey], "ConflictPolicy"]
Emit = Callable[[FieldConflict], None]
OnRebase = Callable[[list[Leaf]], None]


class Overlay:
    """Created by the mutation runtime for a client's replica. ``policy_for(mutation_id, key)``
    names the conflict policy that applies; ``emit`` receives every field conflict;
    ``on_rebase(leaves)`` receives the pending fields whose base changed (see
    :meth:`flush_rebased`)."""

    def __init__(self, replica: Replica, *, policy_for: PolicyFor, emit: Emit, max_client_rewrites: int = 1,
                 on_rebase: OnRebase | None = None):
        if max_client_rewrites < 0:
            raise ValueError("max_client_rewrites must be >= 0")
        self.replica = replica
        self._policy_for = policy_for
        self._emit = emit
        self.max_client_rewrites = max_client_rewrites
        self._base: dict[Leaf, Any] = {}
        self._stacks: dict[Leaf, list[_Entry]] = {}
        self._by_mutation: dict[int, list[Leaf]] = {}
        self._watches: dict[Leaf, Callable[[], None]] = {}
        self._entries: dict[tuple[Leaf, int], _Entry] = {}
        self._replacing: int | None = None
        self._touched: set[Leaf] = set()
        self._seeds: dict[Leaf, Any] = {}
        self.on_rebase = on_rebase
        self._rebased: dict[Leaf, None] = {}  # pending fields whose base changed, in order

    # -- inspection --------------------------------------------------------------------------
    def leaves(self, mutation_id: int) -> list[Leaf]:
        """The fields ``mutation_id`` changed and has not settled."""
        return list(self._by_mutation.get(mutation_id, ()))

    def pending_leaves(self) -> list[Leaf]:
        return list(self._stacks)

    def base(self, leaf: Leaf) -> Any:
        return self._base.get(leaf, MISSING)

    def visible(self, leaf: Leaf) -> Any:
        """The value the document should show for ``leaf`` (MISSING: absent)."""
        stack = self._stacks.get(leaf)
        if stack and not stack[-1].overridden:
            return stack[-1].value
        return self._base.get(leaf, MISSING)

    def bases_of(self, mutation_id: int) -> dict[Leaf, Any]:
        """The base (value under every pending edit; MISSING: absent) of each field
        ``mutation_id`` changed. Stored with a durable or dehydrated mutation, so a rollback
        after a restart restores it (see :meth:`seeding`)."""
        return {leaf: self._base.get(leaf, MISSING) for leaf in self._by_mutation.get(mutation_id, ())
                if leaf in self._stacks}

    def sharing(self, leaves: list[Leaf]) -> set[int]:
        """The mutations with pending edits on any of ``leaves``."""
        return {e.mutation_id for leaf in leaves for e in self._stacks.get(leaf, ())}

    @contextlib.contextmanager
    def seeding(self, bases: Mapping[Leaf, Any] | None) -> Iterator[None]:
        """Replay a restored mutation's edit: a field it edits that has no pending edit yet takes
        its base from ``bases`` (stored with the mutation) instead of the document, which may
        already show the optimistic value (restored by a persister, or hydrated). Fields named
        in ``bases`` are written even when the document already holds the value."""
        if not bases:
            yield
            return
        self._seeds = {leaf: v for leaf, v in bases.items() if leaf not in self._stacks}
        try:
            yield
        finally:
            self._seeds = {}

    # -- optimistic writes -------------------------------------------------------------------
    def write(self, mutation_id: int, key: QueryKey, route: Route, rel: tuple[str, ...], value: Any, *,
              claim: bool = False) -> bool:
        """Write ``value`` at ``route`` (+ ``rel``) for ``mutation_id``; True when anything was
        recorded. Fields whose value does not change are not tracked, unless ``claim``: then the
        mutation owns them too (``OptimisticTx.merge`` claims the fields it names)."""
        check_value(value)
        path = route.path + rel
        depth = route.depth if route.depth is None else max(0, route.depth - len(rel))
        origin = mutation_origin(mutation_id)
        # One open transaction for the reads and the writes: pycrdt then reuses it for every
        # map access instead of committing one per access.
        with self.replica.batch(origin=origin), self.replica.edit(route.doc_id, origin=origin):
            node = self.replica.raw(route.doc_id, path)
            doc_id = route.doc_id
            # A field with pending edits is always written, even with the value on screen: the
            # newer edit owns it (and a re-applied edit keeps the fields it owned).
            changed = list(_changed_leaves(node, path, value, depth, claim,
                                           lambda p: (doc_id, p) in self._stacks or (doc_id, p) in self._seeds))
            if not changed:
                return False
            shown = [(lp, lv, ld) for lp, lv, ld in changed
                     if self._push(mutation_id, key, (route.doc_id, lp), lv, ld)]
            for leaf_path, leaf_value, leaf_depth in shown:
                self._put((route.doc_id, leaf_path), leaf_value, leaf_depth, origin)
        return True

    def delete(self, mutation_id: int, key: QueryKey, route: Route, rel: tuple[str, ...] = ()) -> bool:
        path = route.path + rel
        leaf = (route.doc_id, path)
        if self.replica.read_path(route.doc_id, path) is MISSING and leaf not in self._seeds:
            return False
        if self._push(mutation_id, key, leaf, MISSING, route.depth):
            self._put(leaf, MISSING, route.depth, mutation_origin(mutation_id))
        return True

    def _push(self, mutation_id: int, key: QueryKey, leaf: Leaf, value: Any, depth: int | None) -> bool:
        """Record an entry; True when it is the one on screen (so it must be written)."""
        stack = self._stacks.get(leaf)
        if stack is None:
            self._base[leaf] = self._seeds.pop(leaf) if leaf in self._seeds else self.replica.read_path(*leaf)
            stack = self._stacks[leaf] = []
            self._watches[leaf] = self.replica.watch(leaf[0], leaf[1], self._watcher(leaf))
        existing = self._entries.get((leaf, mutation_id))
        if existing is not None and self._replacing == mutation_id:
            # re-applied after a resolved version conflict: keep its place among later edits
            self._touched.add(leaf)
            existing.value, existing.depth, existing.key = value, depth, key
            return existing is stack[-1] and not existing.overridden
        if existing is not None:
            stack.remove(existing)
        else:
            self._by_mutation.setdefault(mutation_id, []).append(leaf)
        if self._replacing == mutation_id:
            self._touched.add(leaf)
        entry = _Entry(mutation_id, key, value, depth)
        self._entries[(leaf, mutation_id)] = entry
        stack.append(entry)
        return True

    def _put(self, leaf: Leaf, value: Any, depth: int | None, origin: Origin) -> None:
        doc_id, path = leaf
        if value is MISSING:
            self.replica.delete_path(doc_id, path, origin=origin)
        else:
            self.replica.write_path(doc_id, path, value, depth=depth, origin=origin)

    def _untrack(self, leaf: Leaf) -> None:
        self._stacks.pop(leaf, None)
        self._base.pop(leaf, None)
        self._rebased.pop(leaf, None)
        stop = self._watches.pop(leaf, None)
        if stop is not None:
            stop()

    # -- bases -------------------------------------------------------------------------------
    def _set_base(self, leaf: Leaf, value: Any) -> None:
        """Change the base of a pending field; a real change is remembered for
        :meth:`flush_rebased`."""
        if leaf in self._stacks and not strict_equal(self._base.get(leaf, MISSING), value):
            self._rebased[leaf] = None
        self._base[leaf] = value

    def flush_rebased(self) -> None:
        """Hand the pending fields whose base changed since the last call to ``on_rebase``, in
        one call (nothing when none changed). Cheap when nothing changed: call it after any
        transaction that may have changed a base."""
        if not self._rebased:
            return
        leaves, self._rebased = list(self._rebased), {}
        if self.on_rebase is not None:
            self.on_rebase(leaves)

    # -- settling ----------------------------------------------------------------------------
    def rollback(self, mutation_id: int) -> int:
        """Revert exactly ``mutation_id``'s pending edits. Returns how many fields changed back."""
        return self._drop(mutation_id, self._by_mutation.pop(mutation_id, []))

    def _drop(self, mutation_id: int, leaves: list[Leaf]) -> int:
        writes: list[tuple[Leaf, Any, int | None]] = []
        for leaf in leaves:
            stack = self._stacks.get(leaf, [])
            entry = self._entries.pop((leaf, mutation_id), None)
            if entry is None:
                continue
            was_visible = entry is stack[-1] and not entry.overridden
            stack.remove(entry)
            if was_visible:
                writes.append((leaf, self.visible(leaf), entry.depth))
            if not stack:
                self._untrack(leaf)
        done = 0
        if writes:
            with self.replica.batch(origin=rollback_origin(mutation_id)):
                for leaf, value, depth in writes:
                    if not strict_equal(self.replica.read_path(*leaf), value):
                        self._put(leaf, value, depth, rollback_origin(mutation_id))
                        done += 1
        return done

    def settle(self, mutation_id: int) -> None:
        """``mutation_id`` succeeded: its values stay and become the base of their fields."""
        for leaf in self._by_mutation.pop(mutation_id, []):
            stack = self._stacks.get(leaf, [])
            entry = self._entries.pop((leaf, mutation_id), None)
            if entry is None:
                continue
            idx = stack.index(entry)
            if not entry.overridden:
                self._set_base(leaf, entry.value)
                for earlier in stack[:idx]:  # superseded by a confirmed later write
                    earlier.overridden = True
            stack.remove(entry)
            if not stack:
                self._untrack(leaf)
        self.flush_rebased()

    @contextlib.contextmanager
    def replacing(self, mutation_id: int) -> Iterator[None]:
        """Re-apply ``mutation_id``'s edit with new variables, in one transaction (after a
        resolved version conflict). Its fields keep their place in the order of edits, so a
        later mutation's value stays on top; fields the new edit no longer touches roll back."""
        with self.replica.batch(origin=mutation_origin(mutation_id)):
            self._replacing, self._touched = mutation_id, set()
            try:
                yield
            finally:
                self._replacing = None
                mine = self._by_mutation.get(mutation_id, [])
                stale = [leaf for leaf in mine if leaf not in self._touched]
                self._by_mutation[mutation_id] = [leaf for leaf in mine if leaf in self._touched]
                self._drop(mutation_id, stale)

    # -- concurrent changes ------------------------------------------------------------------
    def _watcher(self, leaf: Leaf) -> Callable[[Origin], None]:
        return lambda origin: self._on_change(leaf, origin)

    def _on_change(self, leaf: Leaf, origin: Origin) -> None:
        stack = self._stacks.get(leaf)
        if not stack:
            return
        if origin.kind is OriginKind.MUTATION and origin.id == str(stack[-1].mutation_id):
            return  # the top edit's own write: the field shows its value by construction
        current = self.replica.read_path(*leaf)
        if strict_equal(current, self.visible(leaf)):
            return
        top = stack[-1]
        if top.overridden or origin.kind in (OriginKind.LOCAL, OriginKind.MUTATION, OriginKind.ROLLBACK):
            # A direct local write (set_query_data, another key's mutation) wins silently.
            self._set_base(leaf, current)
            self._override(stack)
            return
        source: ConflictSource = "server" if origin.kind is OriginKind.FETCH else "remote"
        self._conflict(leaf, stack, current, source)

    def _override(self, stack: list[_Entry]) -> None:
        for e in stack:
            e.overridden = True

    def _conflict(self, leaf: Leaf, stack: list[_Entry], incoming: Any, source: ConflictSource) -> None:
        top = stack[-1]
        policy = self._policy_for(top.mutation_id, top.key)
        conflict = FieldConflict(top.key, leaf[0], leaf[1], top.value, incoming, self._base.get(leaf, MISSING),
                                 source, top.mutation_id, policy_name(policy))
        self._set_base(leaf, incoming)
        write = False
        if callable(policy):
            try:
                merged = policy(conflict)
                if merged is not MISSING:
                    check_value(merged)
            except Exception:  # a broken merge function must not break sync: the CRDT result stands
                log.exception("conflict merge function failed for %s %s; keeping the CRDT merge",
                              conflict.doc_id, conflict.path)
                self._override(stack)
            else:
                top.value = merged
                write = True
        elif policy == "server_wins" or (policy == "crdt" and source == "remote"):
            self._override(stack)
        elif policy == "client_wins" and source == "remote":
            if top.rewrites < self.max_client_rewrites:
                top.rewrites += 1
                write = True
            else:
                self._override(stack)
        # crdt / client_wins with the server as source: the user's value stays (rebase).
        if write and source == "remote":
            self._put(leaf, top.value, top.depth, mutation_origin(top.mutation_id))
        self._emit(replace(conflict, resolved=self.visible(leaf)))

    @contextlib.contextmanager
    def restoring(self, fetched: Callable[[str, tuple[str, ...]], Any] | None = None) -> Iterator[None]:
        """For fetch writes this class cannot see in advance (normalized entities written by
        the entity store): run them, then, in the same transaction, put every pending field
        the write changed back to the user's value (the written value becomes its base, and a
        server conflict is reported). Observers only ever see the final state.

        ``fetched(doc_id, path)``: the value the write brought for a field (MISSING if none),
        for fetches that confirm a pending edit and so change nothing in the document: that
        value becomes the field's base too, as :meth:`rebase_fetched` does for plain data."""
        if not self._stacks:
            yield
            return
        with self.replica.batch(origin=FETCH):
            yield
            self._restore_pending(fetched)
        self.flush_rebased()

    def _restore_pending(self, fetched: Callable[[str, tuple[str, ...]], Any] | None = None) -> None:
        """The end of :meth:`restoring`, inside its transaction."""
        for leaf in list(self._stacks):
            stack = self._stacks.get(leaf)
            if not stack:
                continue
            current = self.replica.read_path(*leaf)
            if strict_equal(current, self.visible(leaf)):
                incoming = fetched(*leaf) if fetched is not None else MISSING
                top = stack[-1]
                if incoming is not MISSING and (top.overridden or strict_equal(incoming, top.value)):
                    self._set_base(leaf, incoming)  # the server now says what the edit says
                continue
            top = stack[-1]
            if top.overridden or strict_equal(current, top.value):
                self._set_base(leaf, current)
                continue
            if not strict_equal(current, self._base.get(leaf, MISSING)):
                self._conflict(leaf, stack, current, "server")
            shown = self.visible(leaf)
            if not strict_equal(current, shown):
                self._put(leaf, shown, top.depth, mutation_origin(top.mutation_id))

    def rebase_fetched(self, route: Route, data: Any) -> Any:
        """``data`` (a fetch result for ``route``) with every pending field replaced by the value
        on screen; records the fetched values as the new bases and reports conflicts."""
        doc_id, prefix = route.doc_id, route.path
        n = len(prefix)
        out = data
        for leaf in [lf for lf in self._stacks if lf[0] == doc_id and lf[1][:n] == prefix]:
            stack = self._stacks[leaf]
            rel = leaf[1][n:]
            incoming = _get_rel(data, rel)
            if not strict_equal(incoming, self._base.get(leaf, MISSING)):
                top = stack[-1]
                if top.overridden or strict_equal(incoming, top.value):
                    self._set_base(leaf, incoming)
                else:
                    self._conflict(leaf, stack, incoming, "server")
            out = _set_rel(out, rel, self.visible(leaf))
        self.flush_rebased()
        return out


def _changed_leaves(node: Any, path: tuple[str, ...], value: Any, depth: int | None, claim: bool = False,
                    tracked: Callable[[tuple[str, ...]], bool] | None = None,
                    ) -> Iterator[tuple[tuple[str, ...], Any, int | None]]:
    """The leaves under ``path`` that writing ``value`` changes; with ``claim`` every leaf
    named, and always those ``tracked`` accepts (fields with pending edits)."""
    if isinstance(node, Map) and isinstance(value, Mapping) and (depth is None or depth > 0):
        nxt = None if depth is None else depth - 1
        for k in list(node.keys()):
            if k not in value:
                yield (*path, k), MISSING, nxt
        for k, v in value.items():
            child = node.get(k, MISSING)
            yield from _changed_leaves(child, (*path, k), v, nxt, claim, tracked)
        return
    if (not claim and node is not MISSING and not isinstance(node, Map) and strict_equal(decode(node), value)
            and not (tracked is not None and tracked(path))):
        return
    yield path, value, depth


def encode_bases(bases: Mapping[Leaf, Any]) -> list[list[Any]]:
    """``bases`` as JSON/msgpack-friendly lists: ``[doc_id, [path...], value]``, or
    ``[doc_id, [path...]]`` for a field that was absent."""
    return [[doc_id, list(path)] if v is MISSING else [doc_id, list(path), v] for (doc_id, path), v in bases.items()]


def decode_bases(raw: Any) -> dict[Leaf, Any]:
    """The inverse of :func:`encode_bases`; raises ValueError for malformed data."""
    if raw is None:
        return {}
    if not isinstance(raw, list):
        raise ValueError("bases must be a list")
    out: dict[Leaf, Any] = {}
    for item in raw:
        if not (isinstance(item, list) and len(item) in (2, 3) and isinstance(item[0], str)
                and isinstance(item[1], list) and all(isinstance(seg, str) for seg in item[1])):
            raise ValueError(f"malformed base {item!r}")
        out[(item[0], tuple(item[1]))] = item[2] if len(item) == 3 else MISSING
    return out


def _get_rel(data: Any, rel: tuple[str, ...]) -> Any:
    node = data
    for seg in rel:
        if not isinstance(node, Mapping) or seg not in node:
            return MISSING
        node = node[seg]
    return node


def _set_rel(data: Any, rel: tuple[str, ...], value: Any) -> Any:
    if not rel:
        return None if value is MISSING else value
    base: dict[str, Any] = dict(data) if isinstance(data, Mapping) else {}
    head, rest = rel[0], rel[1:]
    if not rest:
        if value is MISSING:
            base.pop(head, None)
        else:
            base[head] = value
        return base
    child = base.get(head)
    if value is MISSING and not isinstance(child, Mapping):
        return base if isinstance(data, Mapping) else data
    base[head] = _set_rel(child, rest, value)
    return base
