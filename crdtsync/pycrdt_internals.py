"""Every use of pycrdt internals (private attributes and the raw yrs objects behind its shared
types) in crdtsync goes through this module, so a pycrdt upgrade touches one place. pycrdt is
pinned to 0.14 in pyproject; ``tests/test_pycrdt_internals.py`` checks each helper.

Raw access (fast paths that skip pycrdt's per-call wrappers):

- :func:`open_txn`: the yrs transaction ``doc`` has open (None outside a transaction).
- :func:`raw`: the yrs object behind a shared Map or Array (``.integrated``).
- :func:`observe_deep_raw`: a deep subscription on the raw object (yrs-level events, not
  converted to Python values by pycrdt).
- :func:`insert_raw`: insert a plain value straight into yrs inside an open transaction.
- :func:`array_set`: pycrdt's private ``Array._set`` (put a value or a new shared type at an
  index, as ``Map.__setitem__`` does for maps).
- :func:`to_json`: yrs's linear JSON export of a shared Map or Array.
- :func:`is_pycrdt_panic`: recognise the ``PanicException`` of a yrs panic.
- :func:`apply_untrusted` / :func:`update_since`: apply received bytes, or diff against a
  received state vector, with every pycrdt failure (a panic included) as a ``FrameError``.

Commit points: commit an open transaction half-way and go on in a new one.

yrs squashes consecutive items of one client into a single block only when a transaction
commits. Inside one transaction, appending item i walks every unsquashed item before it, so
building an n-item array forward is quadratic (20,000 items: 8.5 s here), and building it
backwards (always at index 0) is linear but leaves n separate blocks that never squash
(about 265 bytes each in memory, against about 60 for a squashed run of short strings).
Appending forward and committing every few dozen items is both linear and compact
(``benchmarks/normalized_bench.py`` measures the result).

:func:`commit_point` does that commit without ending the caller's ``with doc.transaction()``:
it commits the underlying yrs transaction (observers run, as for any commit) and opens a new
one with the same origin inside the same pycrdt ``Transaction`` object. It relies on pycrdt
internals (pinned to 0.14 in pyproject), and it refuses, returning False, whenever it is not
safe: no transaction, a read-only or multithreaded one, or one that somebody else opened
around ours (more than one lease), whose owner would not expect it to be split.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pycrdt import Array, Doc, Map

from .errors import FrameError


def open_txn(doc: Doc[Any]) -> Any:
    """The raw yrs transaction ``doc`` has open, or None."""
    t = doc._txn
    return t._txn if t is not None else None


def raw(shared: Map[Any] | Array[Any]) -> Any:
    """The yrs object behind an integrated shared type."""
    return shared.integrated


def observe_deep_raw(shared: Map[Any], callback: Callable[[list[Any]], None]) -> Callable[[], None]:
    """``observe_deep`` on the raw object: ``callback(events)`` receives yrs events (their
    ``path`` is all crdtsync reads). pycrdt's own wrapper converts every changed value into
    Python objects first (1.8 s for a 100,000-key write here). Returns the function that
    ends the subscription."""
    sub = shared.integrated.observe_deep(callback)
    return lambda: sub.drop()


def insert_raw(container: Map[Any] | Array[Any], key: Any, plain: Any) -> None:
    """Insert a plain value (no shared types inside) at ``key`` (a map key or an array index)
    straight into yrs when a transaction is open (pycrdt's setter adds a transaction context
    and type checks per call, about 10 us each here); otherwise through the public path."""
    tx = open_txn(container.doc)
    if tx is None:
        if isinstance(container, Array):
            container._set(key, plain)
        else:
            container[key] = plain
        return
    container.integrated.insert(tx, key, plain)


def array_set(arr: Array[Any], index: int, value: Any) -> None:
    """Put ``value`` (a plain value or a new shared type) at ``index`` of ``arr``."""
    arr._set(index, value)


def to_json(shared: Map[Any] | Array[Any]) -> str:
    """The content of ``shared`` as JSON, in one linear pass (pycrdt's ``to_py()`` looks array
    items up by index, quadratic on arrays of many separately inserted items)."""
    with shared.doc.transaction() as txn:
        text: str = shared.integrated.to_json(txn._txn)
    return text


def is_pycrdt_panic(exc: BaseException) -> bool:
    """True for the ``PanicException`` pycrdt (pyo3) raises when yrs panics. It derives from
    ``BaseException``, so ``except Exception`` does not catch it; callers applying untrusted
    bytes turn it into a typed error instead."""
    return type(exc).__name__ == "PanicException"


def apply_untrusted(doc: Doc[Any], update: bytes) -> None:
    """Apply ``update`` (bytes from a peer); :class:`FrameError` when it does not decode."""
    try:
        doc.apply_update(update)
    except BaseException as exc:  # pycrdt's PanicException is a BaseException
        if not isinstance(exc, Exception) and not is_pycrdt_panic(exc):
            raise
        raise FrameError(f"update does not decode: {exc}") from exc


def update_since(doc: Doc[Any], state_vector: bytes) -> bytes:
    """What a peer with ``state_vector`` is missing; :class:`FrameError` for a bad vector."""
    try:
        return bytes(doc.get_update(state_vector))
    except BaseException as exc:
        if not isinstance(exc, Exception) and not is_pycrdt_panic(exc):
            raise
        raise FrameError(f"bad state vector: {exc}") from exc


# -- commit points ----------------------------------------------------------------------------
_committing: set[int] = set()  # id() of the documents inside commit_point's commit


def in_commit_point(doc: Doc[Any]) -> bool:
    """True while ``doc``'s observers run for a :func:`commit_point` (the logical transaction
    goes on after it)."""
    return id(doc) in _committing


def can_commit(doc: Doc[Any]) -> bool:
    """True when :func:`commit_point` would commit ``doc``'s open transaction."""
    t = getattr(doc, "_txn", None)
    return (
        t is not None
        and getattr(t, "_txn", None) is not None
        and getattr(t, "_leases", 0) == 1
        and type(t).__name__ == "Transaction"
        and not getattr(doc, "_allow_multithreading", True)
    )


def commit_point(doc: Doc[Any]) -> bool:
    """Commit ``doc``'s open transaction and continue in a fresh one with the same origin.
    Returns False (and does nothing) when that is not safe; see the module docs."""
    if not can_commit(doc):
        return False
    t: Any = doc._txn
    raw = t._txn
    origin_hash = raw.origin()
    _committing.add(id(doc))
    try:
        raw.commit()
    finally:
        _committing.discard(id(doc))
    raw.drop()
    inner: Any = doc._doc
    if origin_hash is None:
        t._txn = inner.create_transaction()
    else:
        t._txn = inner.create_transaction_with_origin(origin_hash)
    return True
