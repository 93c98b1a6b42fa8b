"""Commit points: commit an open transaction half-way and go on in a new one.

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

from typing import Any

from pycrdt import Doc

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
