"""Edit ops as a real mutation's optimistic function: :func:`optimistic_for`.

A :class:`~crdtsync.testing.ops.Mutation` (data: ops plus whether the server rejects it) runs
through a real :class:`~crdtsync.client.QueryClient` with
``client.mutate(..., optimistic=optimistic_for(mutation.ops))``. Every op addresses the query
key ``(doc_id, key)``, which the default router maps to slot ``key`` of document ``doc_id``,
the same place the op edits on a bare Replica:

- :class:`~crdtsync.testing.ops.SetValue` -> ``tx.set(key, value)``;
- :class:`~crdtsync.testing.ops.SetField` -> ``tx.merge(key, {field: value})`` (the mutation
  owns exactly that field, so a rollback never touches the entity's other fields);
- :class:`~crdtsync.testing.ops.DeleteKey` -> ``tx.delete(key)``;
- list and text ops -> ``tx.update(key, fn)`` with the op applied to the plain value (a list
  or a str; a misfit op changes nothing, as on a Replica).

The rollback of a failed mutation is then the mutation layer's own (exactly that mutation's
changes), not an inverse write. :class:`~crdtsync.testing.network.SimPeer` uses this in
``client_mutate``; call it yourself to drive your own client.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from .ops import DeleteKey, EditOp, ListInsert, ListMove, ListRemove, SetField, SetValue, TextDelete, TextInsert

if TYPE_CHECKING:
    from ..mutations.optimistic import OptimisticTx

__all__ = ["apply_to_value", "optimistic_for"]


def apply_to_value(op: EditOp, current: Any) -> Any:
    """The new plain value of ``op``'s slot given its ``current`` value (``None`` when absent),
    or ``None`` when the op changes nothing. Only list and text ops are value transforms."""
    if isinstance(op, ListInsert):
        items = list(current) if isinstance(current, list) else [] if current is None else None
        if items is None:
            return None
        items.insert(op.index % (len(items) + 1), op.value)
        return items
    if isinstance(op, ListRemove):
        if not isinstance(current, list) or not current:
            return None
        items = list(current)
        del items[op.index % len(items)]
        return items
    if isinstance(op, ListMove):
        if not isinstance(current, list) or len(current) < 2:
            return None
        items = list(current)
        value = items.pop(op.source % len(items))
        items.insert(op.dest % (len(items) + 1), value)
        return items
    if isinstance(op, TextInsert):
        text = current if isinstance(current, str) else "" if current is None else None
        if text is None or not op.text:
            return None
        i = op.index % (len(text) + 1)
        return text[:i] + op.text + text[i:]
    if isinstance(op, TextDelete):
        if not isinstance(current, str) or not current or op.length <= 0:
            return None
        start = op.index % len(current)
        return current[:start] + current[start + op.length :]
    raise TypeError(f"{type(op).__name__} is not a value transform")


def _apply(tx: OptimisticTx, op: EditOp) -> None:
    key = (op.doc_id, op.key)
    if isinstance(op, SetValue):
        tx.set(key, op.value)
    elif isinstance(op, SetField):
        current = tx.read(key)
        if current is None or isinstance(current, dict):
            tx.merge(key, {op.field: op.value})
    elif isinstance(op, DeleteKey):
        tx.delete(key)
    else:
        transform = op

        def edit(current: Any) -> Any:
            return apply_to_value(transform, current)

        tx.update(key, edit)


def optimistic_for(ops: Sequence[EditOp]) -> Callable[[OptimisticTx, Any], None]:
    """An ``optimistic(tx, variables)`` function that applies ``ops`` in order."""
    frozen = tuple(ops)

    def optimistic(tx: OptimisticTx, variables: Any) -> None:
        for op in frozen:
            _apply(tx, op)

    return optimistic
