"""Edit operations as data: each op is a frozen dataclass with ``apply(target)``.

``target`` is a :class:`~crdtsync.replica.Replica` (the op runs in one transaction tagged with
the ``origin`` you pass, so listeners and sync see it) or a bare ``pycrdt.Doc`` (the op edits
the map named ``"root"``, the map a Replica uses). Ops never raise on a document whose shape
does not fit them (a list op on a key that holds text, an index past the end): indexes wrap
and a misfit op does nothing. ``apply`` returns True when the op changed something.

Ops address a slot ``key`` of the document's root map:

- :class:`SetValue`, :class:`DeleteKey`: write or remove a JSON-like value (a diff write);
- :class:`SetField`: write one field of the entity (a map) at ``key``, leaving its other fields
  alone; the map is created when the slot is empty;
- :class:`ListInsert`, :class:`ListRemove`, :class:`ListMove`: edit a list (a Yjs ``Array``);
  the list is created by the first insert; a move is a remove then an insert of the same
  value, as Yjs applications do it;
- :class:`TextInsert`, :class:`TextDelete`: edit a ``Text``; indexes count characters
  (converted to the UTF-8 byte offsets pycrdt wants, so non-ASCII text is safe).

Generate them with :func:`crdtsync.testing.strategies.edit_ops`; group them into optimistic
mutations with :class:`Mutation` and :func:`apply_mutation` / :func:`rollback_mutation`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias, TypeVar

from pycrdt import Array, Doc, Map, Text

from ..origins import LOCAL, Origin, OriginKind, mutation_origin
from ..replica import ROOT_NAME, Replica
from ..values import MISSING, decode, encode

__all__ = [
    "DeleteKey",
    "EditOp",
    "ListInsert",
    "ListMove",
    "ListRemove",
    "Mutation",
    "MutationResult",
    "SetField",
    "SetValue",
    "TextDelete",
    "TextInsert",
    "apply_mutation",
    "rollback_mutation",
]

Target: TypeAlias = "Replica | Doc[Any]"


def _root(doc: Doc[Any]) -> Map[Any]:
    root: Map[Any] = doc.get(ROOT_NAME, type=Map[Any])
    return root


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8"))


class _RootOp:
    """Shared ``apply``: run :meth:`_edit` on the root map, in a Replica transaction or not."""

    doc_id: str

    def apply(self, target: Target, *, origin: Origin = LOCAL) -> bool:
        """Apply to a Replica (one transaction tagged ``origin``) or a bare ``Doc``."""
        if isinstance(target, Replica):
            with target.edit(self.doc_id, origin=origin) as root:
                return self._edit(root)
        with target.transaction(origin=origin):
            return self._edit(_root(target))

    def _edit(self, root: Map[Any]) -> bool:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class SetValue(_RootOp):
    """``root[key] = value`` as a diff write (unchanged leaves are not rewritten)."""

    doc_id: str
    key: str
    value: Any

    def apply(self, target: Target, *, origin: Origin = LOCAL) -> bool:
        if isinstance(target, Replica):
            return target.write_path(self.doc_id, (self.key,), self.value, origin=origin)
        return _RootOp.apply(self, target, origin=origin)

    def _edit(self, root: Map[Any]) -> bool:
        if self.key in root and not isinstance(root[self.key], (Map, Array, Text)):
            from ..values import strict_equal

            if strict_equal(decode(root[self.key]), self.value):
                return False
        root[self.key] = encode(self.value, None)
        return True


@dataclass(frozen=True, slots=True)
class DeleteKey(_RootOp):
    """``del root[key]``; nothing when the key is absent."""

    doc_id: str
    key: str

    def apply(self, target: Target, *, origin: Origin = LOCAL) -> bool:
        if isinstance(target, Replica):
            return target.delete_path(self.doc_id, (self.key,), origin=origin)
        return _RootOp.apply(self, target, origin=origin)

    def _edit(self, root: Map[Any]) -> bool:
        if self.key not in root:
            return False
        del root[self.key]
        return True


@dataclass(frozen=True, slots=True)
class SetField(_RootOp):
    """``root[key][field] = value`` as a diff write; nothing when ``key`` holds a non-map."""

    doc_id: str
    key: str
    field: str
    value: Any

    def apply(self, target: Target, *, origin: Origin = LOCAL) -> bool:
        if isinstance(target, Replica):
            node = target.raw(self.doc_id, (self.key,))
            if node is not MISSING and not isinstance(node, Map):
                return False
            return target.write_path(self.doc_id, (self.key, self.field), self.value, origin=origin)
        return _RootOp.apply(self, target, origin=origin)

    def _edit(self, root: Map[Any]) -> bool:
        if self.key not in root:
            root[self.key] = Map()
        node = root[self.key]
        if not isinstance(node, Map):
            return False
        if self.field in node and not isinstance(node[self.field], (Map, Array, Text)):
            from ..values import strict_equal

            if strict_equal(decode(node[self.field]), self.value):
                return False
        node[self.field] = encode(self.value, None)
        return True


_Shared = TypeVar("_Shared", Array[Any], Text)


def _child(root: Map[Any], key: str, kind: type[_Shared], *, create: bool) -> _Shared | None:
    """The shared ``kind`` (Array, Text) at ``key``, created empty when asked; None when absent
    or holding something else."""
    if key not in root:
        if not create:
            return None
        root[key] = kind()
    node = root[key]
    return node if isinstance(node, kind) else None


@dataclass(frozen=True, slots=True)
class ListInsert(_RootOp):
    """Insert ``value`` at ``index`` (wrapped into ``0..len``) of the list at ``key``."""

    doc_id: str
    key: str
    index: int
    value: Any

    def _edit(self, root: Map[Any]) -> bool:
        arr = _child(root, self.key, Array, create=True)
        if arr is None:
            return False
        arr.insert(self.index % (len(arr) + 1), encode(self.value, None))
        return True


@dataclass(frozen=True, slots=True)
class ListRemove(_RootOp):
    """Remove the item at ``index`` (wrapped) of the list at ``key``; nothing when empty."""

    doc_id: str
    key: str
    index: int

    def _edit(self, root: Map[Any]) -> bool:
        arr = _child(root, self.key, Array, create=False)
        if arr is None or len(arr) == 0:
            return False
        del arr[self.index % len(arr)]
        return True


@dataclass(frozen=True, slots=True)
class ListMove(_RootOp):
    """Move an item from ``source`` to ``dest`` (both wrapped): a remove and an insert."""

    doc_id: str
    key: str
    source: int
    dest: int

    def _edit(self, root: Map[Any]) -> bool:
        arr = _child(root, self.key, Array, create=False)
        if arr is None or len(arr) < 2:
            return False
        src = self.source % len(arr)
        value = decode(arr[src])
        del arr[src]
        arr.insert(self.dest % (len(arr) + 1), encode(value, None))
        return True


@dataclass(frozen=True, slots=True)
class TextInsert(_RootOp):
    """Insert ``text`` at character ``index`` (wrapped) of the text at ``key``."""

    doc_id: str
    key: str
    index: int
    text: str

    def _edit(self, root: Map[Any]) -> bool:
        node = _child(root, self.key, Text, create=True)
        if node is None or not self.text:
            return False
        cur = str(node)
        node.insert(_byte_offset(cur, self.index % (len(cur) + 1)), self.text)
        return True


@dataclass(frozen=True, slots=True)
class TextDelete(_RootOp):
    """Delete up to ``length`` characters from character ``index`` (wrapped) of the text."""

    doc_id: str
    key: str
    index: int
    length: int

    def _edit(self, root: Map[Any]) -> bool:
        node = _child(root, self.key, Text, create=False)
        if node is None:
            return False
        cur = str(node)
        if not cur or self.length <= 0:
            return False
        start = self.index % len(cur)
        end = min(len(cur), start + self.length)
        del node[_byte_offset(cur, start) : _byte_offset(cur, end)]
        return True


EditOp: TypeAlias = "SetValue | SetField | DeleteKey | ListInsert | ListRemove | ListMove | TextInsert | TextDelete"


@dataclass(frozen=True, slots=True)
class Mutation:
    """An optimistic mutation: ``ops`` applied at once, later confirmed or rolled back.

    ``fails`` says how the (simulated) server answers: True means the mutation is rejected
    and its optimistic edit must be undone with :func:`rollback_mutation`.
    """

    id: str
    ops: tuple[EditOp, ...]
    fails: bool = False


@dataclass
class MutationResult:
    """What :func:`apply_mutation` did: what to restore if the mutation fails."""

    mutation: Mutation
    snapshot: dict[tuple[str, str], Any] = field(default_factory=dict)
    changed: bool = False


def apply_mutation(replica: Replica, mutation: Mutation) -> MutationResult:
    """Apply a mutation's ops optimistically (origin ``MUTATION``, one transaction per doc).

    Keep the result: when the mutation fails, pass it to :func:`rollback_mutation`.
    """
    result = MutationResult(mutation)
    for op in mutation.ops:
        slot = (op.doc_id, op.key)
        if slot not in result.snapshot:
            result.snapshot[slot] = replica.read_path(op.doc_id, (op.key,))
    origin = mutation_origin(mutation.id)
    with replica.batch(origin=origin):
        for op in mutation.ops:
            result.changed = op.apply(replica, origin=origin) or result.changed
    return result


def rollback_mutation(replica: Replica, result: MutationResult) -> bool:
    """Undo a failed mutation by an inverse write (origin ``ROLLBACK``): each slot the
    mutation touched is written back to its value from before the mutation, as a diff (text
    by its changed middle), so unrelated concurrent edits elsewhere survive. Returns True when
    anything was written. Edits made by others to the same slots in between are overwritten
    too: that is what an inverse-write rollback means.
    """
    origin = Origin(OriginKind.ROLLBACK, result.mutation.id)
    changed = False
    with replica.batch(origin=origin):
        for (doc_id, key), before in result.snapshot.items():
            changed = _restore(replica, doc_id, key, before, origin) or changed
    return changed


def _restore(replica: Replica, doc_id: str, key: str, before: Any, origin: Origin) -> bool:
    if before is MISSING:
        return replica.delete_path(doc_id, (key,), origin=origin)
    current = replica.raw(doc_id, (key,))
    if isinstance(current, Text) and isinstance(before, str):
        with replica.edit(doc_id, origin=origin):
            return _retext(current, before)
    return replica.write_path(doc_id, (key,), before, origin=origin)


def _retext(node: Text, target: str) -> bool:
    cur = str(node)
    if cur == target:
        return False
    p = 0
    while p < min(len(cur), len(target)) and cur[p] == target[p]:
        p += 1
    s = 0
    while s < min(len(cur), len(target)) - p and cur[-1 - s] == target[-1 - s]:
        s += 1
    if len(cur) - s > p:
        del node[_byte_offset(cur, p) : _byte_offset(cur, len(cur) - s)]
    middle = target[p : len(target) - s]
    if middle:
        node.insert(_byte_offset(cur, p), middle)
    return True


def ops_keys(ops: Sequence[EditOp]) -> list[tuple[str, str]]:
    """The ``(doc_id, key)`` slots a sequence of ops touches, in first-touch order."""
    seen: dict[tuple[str, str], None] = {}
    for op in ops:
        seen.setdefault((op.doc_id, op.key), None)
    return list(seen)
