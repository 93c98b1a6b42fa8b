"""The Replica owns the pycrdt documents that hold every cached value.

Read and write by query key (routed to a document and a path by the :class:`Router`), or by
document id and path. Writes are diffs: only the leaves that changed are written, all in one
transaction, and writing an equal value produces no CRDT update at all. Every change carries
an :class:`~crdtsync.origins.Origin`.

Two kinds of listener see changes, always *after* the transaction has committed:

- :meth:`Replica.watch` ``(doc_id, path, callback)``: ``callback(origin)`` runs once per
  transaction that changed anything at, above or below ``path``. Routing by the first path
  segment keeps a change to one entity from waking the watchers of the others.
- :meth:`Replica.on_update` ``(callback)``: ``callback(doc_id, update, origin)`` with the
  binary Yjs update of each transaction, for sync providers and persistence.

Edit a document through :meth:`write`, :meth:`apply_update`, :meth:`batch` or :meth:`edit`,
not through the ``Doc`` directly, so listeners run when the change is complete.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pycrdt import Doc, Map, Subscription, merge_updates

from ..errors import FrameError, RoutingError
from ..origins import LOCAL, REMOTE, Origin
from ..pycrdt_internals import (
    in_commit_point,
    observe_deep_raw,
    open_txn,
    raw,
)
from ..values import (
    MISSING,
    check_value,
    decode,
    encode_checked,
    is_pycrdt_panic,
)
from .diff import assign, set_value
from .routing import Route, Router

ROOT_NAME = "root"
log = logging.getLogger("crdtsync.replica")

WatchCallback = Callable[[Origin], None]
UpdateCallback = Callable[[str, bytes, Origin], None]
DocCallback = Callable[[str], None]
ChangeCallback = Callable[[str, "list[tuple[Any, ...]]", Origin], None]
Path = tuple[str, ...]


@dataclass(eq=False)
class _Watch:
    doc_id: str
    path: Path
    callback: WatchCallback


@dataclass
class _DocState:
    doc: Doc[Any]
    root: Map[Any]
    subs: list[Subscription] = field(default_factory=list)
    deep_sub: Callable[[], None] | None = None  # ends the raw deep subscription
    by_first: dict[str, dict[_Watch, None]] = field(default_factory=dict)  # ordered sets
    whole: dict[_Watch, None] = field(default_factory=dict)


def _related(a: Sequence[Any], b: Sequence[Any]) -> bool:
    n = min(len(a), len(b))
    return all(x == y for x, y in zip(a[:n], b[:n], strict=True))


class Replica:
    """Holds documents by id and routes query keys into them.

    >>> r = Replica()
    >>> r.write(("todos", 5), {"title": "buy milk", "done": False})
    True
    >>> r.read(("todos", 5))
    {'title': 'buy milk', 'done': False}
    >>> r.write(("todos", 5), {"title": "buy milk", "done": False})  # equal: no update
    False
    """

    def __init__(self, *, router: Router | None = None, client_id: int | None = None):
        self.router = router if router is not None else Router()
        self._client_id = client_id
        self._docs: dict[str, _DocState] = {}
        self._update_listeners: list[UpdateCallback] = []
        self._doc_listeners: list[DocCallback] = []
        self._origin: Origin = LOCAL
        # Changed paths waiting for the flush, one entry per document and transaction.
        self._pending_changes: list[tuple[str, list[tuple[Any, ...]], Origin]] = []
        self._pending_updates: list[tuple[str, bytes, Origin]] = []
        self._batch_depth = 0
        self._batch_stack: contextlib.ExitStack | None = None
        self._batch_docs: set[str] = set()
        self._flushing = False
        self._unload_listeners: list[DocCallback] = []
        self._change_listeners: list[ChangeCallback] = []
        self._own_paths: dict[str, list[tuple[Any, ...]]] = {}  # paths written by this class, per doc
        self._untracked: set[str] = set()  # docs whose open transaction has changes of unknown paths

    # -- documents -------------------------------------------------------------------------
    def doc(self, doc_id: str) -> Doc[Any]:
        """The document ``doc_id``, created empty on first use."""
        self._untracked.add(doc_id)  # the caller may edit it directly: read its next events
        return self._state(doc_id).doc

    def has_doc(self, doc_id: str) -> bool:
        return doc_id in self._docs

    def doc_ids(self) -> list[str]:
        return list(self._docs)

    def _state(self, doc_id: str) -> _DocState:
        st = self._docs.get(doc_id)
        if st is None:
            if not isinstance(doc_id, str) or not doc_id:
                raise RoutingError(f"a document id is a non-empty str, got {doc_id!r}")
            doc: Doc[Any] = Doc(client_id=self._client_id) if self._client_id is not None else Doc()
            root = doc.get(ROOT_NAME, type=Map[Any])
            st = _DocState(doc, root)
            # pycrdt inspects callback arity, so these are one-argument closures.
            # The raw (yrs-level) deep subscription: pycrdt's own wrapper converts every changed
            # value into Python objects before calling back (1.8 s for a 100,000-key write here),
            # and the paths are all crdtsync needs. Writes made through this class even record
            # their paths themselves, so their events are not read at all.
            st.deep_sub = observe_deep_raw(root, self._deep_observer(doc_id))
            st.subs.append(doc.observe(self._txn_observer(doc_id)))
            self._docs[doc_id] = st
            for cb in list(self._doc_listeners):
                cb(doc_id)
        return st

    def _deep_observer(self, doc_id: str) -> Callable[[list[Any]], None]:
        return lambda events: self._on_deep(doc_id, events)

    def _txn_observer(self, doc_id: str) -> Callable[[Any], None]:
        return lambda event: self._on_txn(doc_id, event)

    def _on_deep(self, doc_id: str, events: list[Any]) -> None:
        origin = self._origin
        own = self._own_paths.pop(doc_id, None)
        if own is not None and doc_id not in self._untracked:
            self._pending_changes.append((doc_id, own, origin))
            return
        st = self._docs.get(doc_id)
        if st is None or not in_commit_point(st.doc):  # after a commit point the edit goes on
            self._untracked.discard(doc_id)
        paths: list[tuple[Any, ...]] = []
        for ev in events:
            try:
                path = tuple(ev.path)
            except BaseException as exc:
                if not is_pycrdt_panic(exc):
                    raise
                paths = [()]  # yrs could not say where: report the whole document
                break
            try:
                keys = getattr(ev, "keys", None)
            except BaseException as exc:
                # yrs 0.28 panics computing a map event's keys after some merges (found by the
                # convergence property; the cause inside yrs is not known): report the whole
                # map as changed instead of failing the commit.
                if not is_pycrdt_panic(exc):
                    raise
                keys = None
            if isinstance(keys, Mapping) and keys:
                paths.extend((*path, k) for k in keys)
            else:
                paths.append(path)
        self._pending_changes.append((doc_id, paths, origin))

    def _on_txn(self, doc_id: str, event: Any) -> None:
        self._pending_updates.append((doc_id, bytes(event.update), self._origin))

    def route(self, key: Sequence[Any]) -> Route:
        return self.router.resolve(key)

    # -- reading -----------------------------------------------------------------------------
    def read(self, key: Sequence[Any]) -> Any:
        """The plain Python value stored for ``key``, or ``MISSING``."""
        r = self.route(key)
        return self.read_path(r.doc_id, r.path)

    def read_path(self, doc_id: str, path: Sequence[str]) -> Any:
        st = self._docs.get(doc_id)
        if st is None:
            return MISSING
        node: Any = st.root
        for seg in path:
            if not isinstance(node, Map) or seg not in node:
                return MISSING
            node = node[seg]
        return decode(node)

    def raw(self, doc_id: str, path: Sequence[str]) -> Any:
        """The pycrdt object at ``path`` (a ``Map``, ``Array``, ``Text`` or plain value), or MISSING."""
        self._untracked.add(doc_id)  # the caller may edit it directly: read its next events
        node: Any = self._state(doc_id).root
        for seg in path:
            if not isinstance(node, Map) or seg not in node:
                return MISSING
            node = node[seg]
        return node

    # -- writing -----------------------------------------------------------------------------
    def write(self, key: Sequence[Any], value: Any, *, origin: Origin = LOCAL) -> bool:
        """Diff-write ``value`` at ``key``'s location; True when anything changed."""
        r = self.route(key)
        return self.write_path(r.doc_id, r.path, value, depth=r.depth, origin=origin)

    def write_path(
        self,
        doc_id: str,
        path: Sequence[str],
        value: Any,
        *,
        depth: int | None = None,
        origin: Origin = LOCAL,
    ) -> bool:
        """Diff-write ``value`` at ``path`` of ``doc_id``; True when anything changed."""
        if not path:
            raise RoutingError("cannot write a value at the empty path (the root is a map)")
        check_value(value)
        with self._transaction(doc_id, origin) as st:
            created = self._parent_created(st.root, path)
            parent = self._parent(st.root, path, create=True)
            changed = set_value(parent, path[-1], value, depth)
            if changed or created:
                self._own_paths.setdefault(doc_id, []).append(tuple(path[: created or len(path)]))
            return changed

    def write_many(self, doc_id: str, items: Mapping[str, Any], *, depth: int | None = None,
                   origin: Origin = LOCAL, encoded: Mapping[str, Any] | None = None) -> int:
        """Diff-write many root-level slots of one document in one transaction (entities, say).
        Returns how many slots changed. ``encoded``: the caller has validated every value with
        ``encode_checked`` and gives here the encoded form of those it changed (the others are
        stored as they are)."""
        if encoded is None:
            for value in items.values():
                check_value(value)
        own: list[tuple[Any, ...]] = []
        with self._transaction(doc_id, origin) as st:
            root = st.root
            tx = open_txn(st.doc)
            if len(root) == 0 and depth in (0, 1) and tx is not None:
                # A fresh document of plain values, or of maps of plain values ("fields"): no
                # diffing, straight into yrs (pycrdt's wrappers cost more than the insert here).
                yroot = raw(root)
                insert = yroot.insert
                if depth == 0:
                    for k, v in items.items():
                        insert(tx, k, encode_checked(v) if encoded is None else encoded.get(k, v))
                else:
                    for k, v in items.items():
                        enc = encode_checked(v) if encoded is None else encoded.get(k, v)
                        if type(enc) is dict:
                            sub = yroot.insert_map_prelim(tx, k)
                            for fk, fv in enc.items():
                                sub.insert(tx, fk, fv)
                        else:
                            assign(root, k, v, depth)
                own = [(k,) for k in items]
            elif len(root) == 0:  # a fresh document: nothing to diff against
                for k, v in items.items():
                    assign(root, k, v, depth)
                    own.append((k,))
            else:
                for k, v in items.items():
                    if set_value(root, k, v, depth):
                        own.append((k,))
            if own:
                self._own_paths.setdefault(doc_id, []).extend(own)
        return len(own)

    def delete(self, key: Sequence[Any], *, origin: Origin = LOCAL) -> bool:
        """Remove the value at ``key``'s location; True when there was one."""
        r = self.route(key)
        return self.delete_path(r.doc_id, r.path, origin=origin)

    def delete_path(self, doc_id: str, path: Sequence[str], *, origin: Origin = LOCAL) -> bool:
        if doc_id not in self._docs or not path:
            return False
        with self._transaction(doc_id, origin) as st:
            parent = self._parent(st.root, path, create=False)
            if parent is None or path[-1] not in parent:
                return False
            del parent[path[-1]]
            self._own_paths.setdefault(doc_id, []).append(tuple(path))
        return True

    @staticmethod
    def _parent_created(root: Map[Any], path: Sequence[str]) -> int:
        """How many leading path segments a write will create (0: the parent exists)."""
        node: Any = root
        for i, seg in enumerate(path[:-1]):
            if not isinstance(node, Map) or seg not in node:
                return i + 1
            node = node[seg]
        return 0

    @staticmethod
    def _parent(root: Map[Any], path: Sequence[str], *, create: bool) -> Any:
        node = root
        for i, seg in enumerate(path[:-1]):
            child = node.get(seg)
            if child is None and seg not in node:
                if not create:
                    return None
                node[seg] = Map()
                child = node[seg]
            if not isinstance(child, Map):
                raise RoutingError(
                    f"path {tuple(path)!r} goes through {tuple(path[: i + 1])!r}, which holds a plain value"
                )
            node = child
        return node

    @contextlib.contextmanager
    def edit(self, doc_id: str, *, origin: Origin = LOCAL) -> Iterator[Map[Any]]:
        """Edit a document's root map directly, in one transaction tagged ``origin``.

        Use it for rich types (``Text`` for an editor, say); listeners run when it exits.
        """
        with self._transaction(doc_id, origin) as st:
            self._untracked.add(doc_id)
            yield st.root

    @contextlib.contextmanager
    def batch(self, *, origin: Origin = LOCAL) -> Iterator[None]:
        """Group writes: one transaction (and one update) per document, listeners run once at
        the end. Nested batches join the outermost one and its origin."""
        if self._batch_depth == 0:
            self._batch_stack = contextlib.ExitStack()
            self._batch_docs = set()
            self._origin = origin
        self._batch_depth += 1
        try:
            yield
        finally:
            self._batch_depth -= 1
            if self._batch_depth == 0:
                stack, self._batch_stack = self._batch_stack, None
                try:
                    if stack is not None:
                        stack.close()
                finally:
                    self._origin = LOCAL
                    self._flush()

    @contextlib.contextmanager
    def _transaction(self, doc_id: str, origin: Origin) -> Iterator[_DocState]:
        st = self._state(doc_id)
        if self._batch_depth > 0 and self._batch_stack is not None:
            if doc_id not in self._batch_docs:
                self._batch_stack.enter_context(st.doc.transaction(origin=self._origin))
                self._batch_docs.add(doc_id)
            yield st
            return
        self._origin = origin
        try:
            with st.doc.transaction(origin=origin):
                yield st
        finally:
            self._origin = LOCAL
            self._flush()

    # -- sync --------------------------------------------------------------------------------
    def apply_update(self, doc_id: str, update: bytes, *, origin: Origin = REMOTE,
                     raise_listener_errors: bool = True) -> None:
        """Merge a binary Yjs update into ``doc_id``. Listeners see it tagged ``origin``.

        Bytes that do not decode raise (the document is unchanged). When a listener fails after
        the update was applied, its error is raised too, unless ``raise_listener_errors`` is
        False: then it is logged, as sync providers want (the peer did nothing wrong)."""
        applied = False
        try:
            with self._transaction(doc_id, origin) as st:
                self._untracked.add(doc_id)
                try:
                    st.doc.apply_update(update)
                except BaseException as exc:
                    if is_pycrdt_panic(exc):
                        raise FrameError(f"pycrdt could not apply an update of {doc_id!r}: {exc}") from exc
                    raise
                applied = True
        except Exception:
            if applied and not raise_listener_errors:
                log.exception("a listener failed on an update of %r (the update is applied)", doc_id)
                return
            raise
        except BaseException as exc:
            # yrs can also panic committing what it integrated (seen once, in ClientBlockList::
            # squash_left): a typed error for the caller, like a panic while applying.
            if is_pycrdt_panic(exc):
                raise FrameError(f"pycrdt failed committing an update of {doc_id!r}: {exc}") from exc
            raise

    def get_update(self, doc_id: str, state_vector: bytes | None = None) -> bytes:
        """The update that brings a peer at ``state_vector`` (None: empty) up to date."""
        return self._state(doc_id).doc.get_update(state_vector)

    def state_vector(self, doc_id: str) -> bytes:
        return self._state(doc_id).doc.get_state()

    # -- listeners ---------------------------------------------------------------------------
    def watch(self, doc_id: str, path: Sequence[str], callback: WatchCallback) -> Callable[[], None]:
        """Call ``callback(origin)`` after each transaction that changes anything at, above or
        below ``path`` in ``doc_id``. Returns a function that stops watching."""
        st = self._state(doc_id)
        w = _Watch(doc_id, tuple(path), callback)
        bucket = st.whole if not w.path else st.by_first.setdefault(w.path[0], {})
        bucket[w] = None

        def stop() -> None:
            bucket.pop(w, None)
            if w.path and not bucket:
                st.by_first.pop(w.path[0], None)

        return stop

    def on_update(self, callback: UpdateCallback) -> Callable[[], None]:
        """Call ``callback(doc_id, update, origin)`` for every committed transaction."""
        self._update_listeners.append(callback)
        return lambda: self._update_listeners.remove(callback) if callback in self._update_listeners else None

    def on_change(self, callback: ChangeCallback) -> Callable[[], None]:
        """Call ``callback(doc_id, paths, origin)`` after each transaction, with the paths that
        changed (``()`` for the whole root), before any :meth:`watch` callback runs. For caches
        and indexes that must be current when watchers read."""
        self._change_listeners.append(callback)
        return lambda: self._change_listeners.remove(callback) if callback in self._change_listeners else None

    def on_doc(self, callback: DocCallback) -> Callable[[], None]:
        """Call ``callback(doc_id)`` whenever a new document is created in this replica."""
        self._doc_listeners.append(callback)
        return lambda: self._doc_listeners.remove(callback) if callback in self._doc_listeners else None

    def _flush(self) -> None:
        if self._flushing or self._batch_depth > 0:
            return
        self._flushing = True
        errors: list[Exception] = []

        def call(fn: Callable[..., None], *args: Any) -> None:
            # A failing listener must not keep the others (sync, persistence) from their update.
            try:
                fn(*args)
            except Exception as exc:
                errors.append(exc)

        try:
            while self._pending_changes or self._pending_updates:
                changes, self._pending_changes = self._pending_changes, []
                updates, self._pending_updates = self._pending_updates, []
                if self._change_listeners and changes:
                    by_doc: dict[str, tuple[list[tuple[Any, ...]], Origin]] = {}
                    copied: set[str] = set()  # docs whose path list here is a copy (safe to extend)
                    for doc_id, cpaths, origin in changes:
                        have = by_doc.get(doc_id)
                        if have is None:
                            by_doc[doc_id] = (cpaths, origin)
                        else:
                            if doc_id not in copied:
                                copied.add(doc_id)
                                have = by_doc[doc_id] = (list(have[0]), have[1])
                            have[0].extend(cpaths)
                    for doc_id, (paths, origin) in by_doc.items():
                        for ccb in list(self._change_listeners):
                            call(ccb, doc_id, paths, origin)
                fired: dict[_Watch, Origin] = {}
                for doc_id, cpaths, origin in changes:
                    st = self._docs.get(doc_id)
                    if st is None or not (st.whole or st.by_first):
                        continue
                    for cpath in cpaths:
                        candidates: list[_Watch] = list(st.whole)
                        if not cpath:
                            for bucket in st.by_first.values():
                                candidates.extend(bucket)
                        else:
                            candidates.extend(st.by_first.get(str(cpath[0]), ()))
                        for w in candidates:
                            if w not in fired and _related(w.path, cpath):
                                fired[w] = origin
                for w, origin in fired.items():
                    call(w.callback, origin)
                for doc_id, update, origin in _merge_runs(updates) if self._update_listeners else ():
                    for cb in list(self._update_listeners):
                        call(cb, doc_id, update, origin)
        finally:
            self._flushing = False
        if errors:
            raise errors[0]

    @staticmethod
    def _drop_subs(st: _DocState) -> None:
        for sub in st.subs:
            with contextlib.suppress(Exception):
                st.doc.unobserve(sub)
        st.subs.clear()
        if st.deep_sub is not None:
            with contextlib.suppress(Exception):
                st.deep_sub()
            st.deep_sub = None

    @property
    def flushing(self) -> bool:
        """True while listeners of a committed change run (some may not have seen it yet)."""
        return self._flushing

    @property
    def in_batch(self) -> bool:
        """True inside :meth:`batch`, where changes are not committed yet."""
        return self._batch_depth > 0

    def unload(self, doc_id: str) -> bool:
        """Drop ``doc_id`` from memory (its watchers too). Peers and stores keep their copies;
        using the id again starts an empty document. Returns False when it was not loaded."""
        st = self._docs.pop(doc_id, None)
        if st is None:
            return False
        self._drop_subs(st)
        st.by_first.clear()
        st.whole.clear()
        self._own_paths.pop(doc_id, None)
        self._untracked.discard(doc_id)
        self._batch_docs.discard(doc_id)
        for cb in list(self._unload_listeners):
            cb(doc_id)
        return True

    def on_unload(self, callback: DocCallback) -> Callable[[], None]:
        """Call ``callback(doc_id)`` when a document is unloaded."""
        self._unload_listeners.append(callback)
        return lambda: self._unload_listeners.remove(callback) if callback in self._unload_listeners else None

    def close(self) -> None:
        """Release every document's observers (a ``Doc`` with live observers is never freed)."""
        for st in self._docs.values():
            self._drop_subs(st)
        self._docs.clear()


def _merge_runs(updates: list[tuple[str, bytes, Origin]]) -> list[tuple[str, bytes, Origin]]:
    """Each document's consecutive updates with one origin (the commits of one chunked write,
    see txn.py, which other documents' commits may interleave) merged into one, so listeners
    see one update per logical change. A document's updates keep their order."""
    if len(updates) < 2:
        return updates
    runs: list[tuple[str, list[bytes], Origin]] = []
    last: dict[str, tuple[str, list[bytes], Origin]] = {}
    for doc_id, update, origin in updates:
        run = last.get(doc_id)
        if run is not None and run[2] == origin:
            run[1].append(update)
            continue
        run = (doc_id, [update], origin)
        last[doc_id] = run
        runs.append(run)
    return [(d, us[0] if len(us) == 1 else merge_updates(*us), o) for d, us, o in runs]
