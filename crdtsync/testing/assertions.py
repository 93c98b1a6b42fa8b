"""Checks for conflict suites: convergence, no acknowledged loss, and intent helpers.

- :func:`assert_converged` ``(replicas)``: every replica holds the same value, in the same
  kind of shared type, in every document; on failure the message lists each differing
  document and path with every replica's value there (and kind, where a shared ``Text``,
  ``Map`` or ``Array`` stands against a plain ``str``, ``dict`` or ``list``: see
  :mod:`crdtsync.testing.diff`).
- :func:`assert_no_acknowledged_loss` ``(network)``: every write of a
  :class:`~crdtsync.testing.network.SimNetwork` that a peer persisted and confirmed is held by
  every live replica (a later delete by someone else is fine: that is history, not loss).
- Intent helpers set up a classic conflict between two replicas, sync them and report what
  survived, so a test can assert *its* rule: :func:`concurrent_edit_vs_delete`,
  :func:`two_inserts_same_position`.

Failures raise :class:`~crdtsync.errors.NotConvergedError` or
:class:`~crdtsync.errors.AcknowledgedWriteLostError`, both ``AssertionError`` subclasses.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import AcknowledgedWriteLostError, NotConvergedError
from ..replica import Replica
from ..values import MISSING, strict_equal
from .diff import Difference, _named, differences
from .peers import connect

if TYPE_CHECKING:
    from .network import SimNetwork

__all__ = [
    "Difference",
    "EditVsDeleteOutcome",
    "InsertOrderOutcome",
    "assert_converged",
    "assert_no_acknowledged_loss",
    "concurrent_edit_vs_delete",
    "differences",
    "two_inserts_same_position",
]


def assert_converged(
    replicas: Iterable[Replica] | Mapping[str, Replica],
    *,
    docs: Iterable[str] | None = None,
    max_differences: int = 20,
) -> None:
    """Raise :class:`~crdtsync.errors.NotConvergedError` unless all replicas hold equal values
    in the same kinds of shared type (a shared ``Text("hi")`` and a plain ``"hi"`` differ, so
    do a shared ``Map`` and a plain ``dict``, a shared ``Array`` and a plain ``list``).

    ``replicas`` is a sequence (named ``replica[i]`` in the message) or a mapping of names to
    replicas (``net.named_replicas()``). ``docs`` limits the check to those document ids
    (default: every document any replica has; a document one replica lacks counts as empty).
    Values are compared strictly (``1`` differs from ``1.0``).
    """
    names, reps = _named(replicas)
    if len(reps) < 2:
        return
    diffs = differences(dict(zip(names, reps, strict=True)), docs=docs)
    if not diffs:
        return
    shown = "\n".join(d.describe(names) for d in diffs[:max_differences])
    more = f"\n... and {len(diffs) - max_differences} more" if len(diffs) > max_differences else ""
    raise NotConvergedError(f"replicas differ in {len(diffs)} place(s):\n{shown}{more}")


def assert_no_acknowledged_loss(network: SimNetwork, *, include_locally_persisted: bool = True) -> None:
    """Raise :class:`~crdtsync.errors.AcknowledgedWriteLostError` if any acknowledged write is
    missing from a live replica of ``network``.

    With ``include_locally_persisted`` (default) writes that only their author persisted count
    too: a write that reached the author's own store must survive its crashes. Call it after
    :meth:`~crdtsync.testing.network.SimNetwork.heal_all`.
    """
    lost: list[str] = []
    for record in network.writes.values():
        durable = record.acknowledged or (include_locally_persisted and record.peer in record.persisted_by)
        if not durable:
            continue
        for name, replica in network.named_replicas().items():
            if not record.contained_in(replica):
                lost.append(
                    f"write #{record.id} by {record.peer} (incarnation {record.incarnation}, "
                    f"doc {record.doc_id!r}, acked by {sorted(record.acked_by)}, "
                    f"persisted by {sorted(record.persisted_by)}) is missing from {name}"
                )
    if lost:
        shown = "\n".join(lost[:20])
        raise AcknowledgedWriteLostError(f"{len(lost)} acknowledged write(s) lost:\n{shown}")


# -- intent helpers ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EditVsDeleteOutcome:
    """What survived when one replica edited a field of an entity another deleted."""

    value: Any  # the entity after sync (``MISSING`` when the delete won entirely)
    converged: bool
    field: str

    @property
    def deleted(self) -> bool:
        """True when the entity is gone after sync."""
        return self.value is MISSING

    @property
    def edit_survived(self) -> bool:
        """True when the edited field is present after sync."""
        return isinstance(self.value, Mapping) and self.field in self.value


def concurrent_edit_vs_delete(
    *,
    doc_id: str = "doc",
    key: str = "item",
    initial: Mapping[str, Any],
    field: str,
    new_value: Any,
) -> EditVsDeleteOutcome:
    """Replica A deletes ``key`` while replica B (offline) sets ``key.field = new_value``;
    then they sync. Returns what is left at ``key`` on both.

    With Replica's nested maps the delete removes the whole entity, B's edit inside it is
    lost from view (``deleted`` is True). Assert the rule your app wants.
    """
    a, b = Replica(), Replica()
    try:
        a.write_path(doc_id, (key,), dict(initial))
        b.apply_update(doc_id, a.get_update(doc_id))
        a.delete_path(doc_id, (key,))
        b.write_path(doc_id, (key, field), new_value)
        stop = connect(a, b)
        stop()
        va, vb = a.read_path(doc_id, (key,)), b.read_path(doc_id, (key,))
        return EditVsDeleteOutcome(va, strict_equal(va, vb), field)
    finally:
        a.close()
        b.close()


@dataclass(frozen=True, slots=True)
class InsertOrderOutcome:
    """The list after two replicas inserted at the same index concurrently."""

    items: list[Any]
    converged: bool

    @property
    def both_kept(self) -> bool:
        return len(self.items) >= 2


def two_inserts_same_position(
    *,
    doc_id: str = "doc",
    key: str = "list",
    initial: Sequence[Any] = (),
    index: int = 0,
    first: Any = "A",
    second: Any = "B",
) -> InsertOrderOutcome:
    """Replicas A and B both insert at ``index`` of the same list while apart (A inserts
    ``first``, B ``second``), then sync. Returns the merged list (identical on both when
    ``converged``): Yjs keeps both inserts, in an order that is the same everywhere."""
    from .ops import ListInsert

    a, b = Replica(), Replica()
    try:
        a.write_path(doc_id, (key,), list(initial))
        b.apply_update(doc_id, a.get_update(doc_id))
        ListInsert(doc_id, key, index, first).apply(a)
        ListInsert(doc_id, key, index, second).apply(b)
        stop = connect(a, b)
        stop()
        va, vb = a.read_path(doc_id, (key,)), b.read_path(doc_id, (key,))
        return InsertOrderOutcome(list(va) if isinstance(va, list) else [], strict_equal(va, vb))
    finally:
        a.close()
        b.close()
