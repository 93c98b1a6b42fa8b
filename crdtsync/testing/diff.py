"""Where replicas differ: values *and* the kind of shared type that holds them.

Two replicas can decode to the same Python value and still hold different documents: a
shared ``Text("hi")`` on one and a plain string ``"hi"`` on the other, a shared ``Map`` and a
plain ``dict`` (stored as one opaque value), a shared ``Array`` and a plain ``list``. They
merge differently from then on (characters vs whole-value overwrites), so they have not
converged. :func:`differences` walks the documents themselves, not their decoded copies:

- at each path it takes every replica's *kind*: ``Map``, ``Array``, ``Text`` (or another
  pycrdt shared type) for shared types, the Python type name (``str``, ``dict``, ``list``,
  ``int``...) for plain values, ``MISSING`` where there is nothing;
- when a shared type is involved and the kinds differ, that path is one
  :class:`Difference` (with ``kinds``), and the walk does not go below it;
- otherwise shared maps are compared key by key, shared arrays of equal length index by
  index, and everything else by value, strictly (``1`` differs from ``1.0``).

Call :func:`~crdtsync.testing.assertions.assert_converged` in tests; use
:func:`differences` to inspect the result yourself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pycrdt import Array, Map, Text, XmlElement, XmlFragment, XmlText

from ..replica import Replica
from ..values import MISSING, decode, strict_equal

__all__ = ["Difference", "differences", "kind_of"]

_SHARED = (Map, Array, Text, XmlFragment, XmlElement, XmlText)


class _EmptyRoot:
    """The root of a document a replica does not have: an empty shared map."""


_EMPTY_ROOT = _EmptyRoot()


def kind_of(node: Any) -> str:
    """The kind of a node read from a document: ``"Map"``, ``"Array"``, ``"Text"`` (or
    ``"XmlFragment"``, ``"XmlElement"``, ``"XmlText"``) for shared types; ``"MISSING"``;
    otherwise the type name of the decoded plain value (``"str"``, ``"dict"``, ``"list"``,
    ``"int"``, ``"float"``, ``"bool"``, ``"None"``)."""
    if node is MISSING:
        return "MISSING"
    if isinstance(node, _EmptyRoot):
        return "Map"
    if isinstance(node, _SHARED):
        return type(node).__name__
    return _plain_kind(decode(node))


def _plain_kind(value: Any) -> str:
    """The kind of an already decoded plain value."""
    if value is MISSING:
        return "MISSING"
    return "None" if value is None else type(value).__name__


def _is_shared(node: Any) -> bool:
    return isinstance(node, (*_SHARED, _EmptyRoot))


def _value(node: Any) -> Any:
    if node is MISSING:
        return MISSING
    if isinstance(node, _EmptyRoot):
        return {}
    return decode(node)


@dataclass(frozen=True, slots=True)
class Difference:
    """Replicas disagree at ``path`` of ``doc_id``; ``values[i]`` is replica ``i``'s decoded
    value there (``MISSING`` where it has none) and ``kinds[i]`` its kind (:func:`kind_of`)."""

    doc_id: str
    path: tuple[str | int, ...]
    values: tuple[Any, ...]
    kinds: tuple[str, ...] = ()

    @property
    def kind_mismatch(self) -> bool:
        """True when the replicas hold different kinds here and one of them is a shared type
        (``Text`` vs ``str``, ``Map`` vs ``dict``, ``Array`` vs ``list``...), whatever the values."""
        present = [k for k in self.kinds if k != "MISSING"]
        return len(set(present)) > 1 and any(k in _SHARED_NAMES for k in present)

    def describe(self, names: Sequence[str]) -> str:
        """Readable lines for a failure message; ``names[i]`` names replica ``i``."""
        where = "/".join(str(p) for p in self.path) or "<root>"
        if not self.kind_mismatch:
            lines = [f"doc {self.doc_id!r} at {where}:"]
            lines += [f"    {name}: {value!r}" for name, value in zip(names, self.values, strict=True)]
            return "\n".join(lines)
        labels = [_label(k) for k in self.kinds]
        distinct = " vs ".join(dict.fromkeys(label for label in labels if label != "MISSING"))
        lines = [f"doc {self.doc_id!r} at {where}: kinds differ ({distinct}):"]
        for name, label, value in zip(names, labels, self.values, strict=True):
            lines.append(f"    {name}: MISSING" if value is MISSING else f"    {name}: {label} {value!r}")
        return "\n".join(lines)


_SHARED_NAMES = frozenset(t.__name__ for t in _SHARED)


def _label(kind: str) -> str:
    if kind == "MISSING":
        return kind
    return f"shared {kind}" if kind in _SHARED_NAMES else f"plain {kind}"


def _difference(doc_id: str, path: tuple[str | int, ...], nodes: list[Any]) -> Difference:
    return Difference(doc_id, path, tuple(_value(n) for n in nodes), tuple(kind_of(n) for n in nodes))


def _entries(node: Any) -> dict[str, Any]:
    return {} if isinstance(node, _EmptyRoot) else dict(node.items())


def _diff_nodes(doc_id: str, path: tuple[str | int, ...], nodes: list[Any], out: list[Difference]) -> None:
    """Compare what the replicas hold at ``path`` (pycrdt shared types or plain values)."""
    if not any(_is_shared(n) for n in nodes):
        _diff_values(doc_id, path, [_value(n) for n in nodes], out)
        return
    kinds = {kind_of(n) for n in nodes}
    if len(kinds) > 1:
        out.append(_difference(doc_id, path, nodes))
        return
    (kind,) = kinds
    if kind == "Map":
        children = [_entries(n) for n in nodes]
        keys: dict[str, None] = {}
        for c in children:
            keys.update(dict.fromkeys(sorted(c)))
        for k in keys:
            _diff_nodes(doc_id, (*path, k), [c.get(k, MISSING) for c in children], out)
        return
    if kind == "Array":
        items = [list(n) for n in nodes]
        if len({len(i) for i in items}) == 1:
            for i in range(len(items[0])):
                _diff_nodes(doc_id, (*path, i), [it[i] for it in items], out)
            return
        out.append(_difference(doc_id, path, nodes))
        return
    values = [_value(n) for n in nodes]  # Text and the XML types: compare their content
    if not all(strict_equal(values[0], v) for v in values[1:]):
        out.append(_difference(doc_id, path, nodes))


def _diff_values(doc_id: str, path: tuple[str | int, ...], values: list[Any], out: list[Difference]) -> None:
    """Compare plain values (no shared type among them), descending into dicts and lists."""
    first = values[0]
    if all(strict_equal(first, v) for v in values[1:]):
        return
    if all(isinstance(v, Mapping) for v in values):
        keys: dict[str, None] = {}
        for v in values:
            keys.update(dict.fromkeys(sorted(v)))
        for k in keys:
            _diff_values(doc_id, (*path, k), [v.get(k, MISSING) for v in values], out)
        return
    if all(isinstance(v, list) for v in values) and len({len(v) for v in values}) == 1:
        for i in range(len(first)):
            _diff_values(doc_id, (*path, i), [v[i] for v in values], out)
        return
    out.append(Difference(doc_id, path, tuple(values), tuple(_plain_kind(v) for v in values)))


def _named(replicas: Iterable[Replica] | Mapping[str, Replica]) -> tuple[list[str], list[Replica]]:
    if isinstance(replicas, Mapping):
        return [str(n) for n in replicas], list(replicas.values())
    reps = list(replicas)
    return [f"replica[{i}]" for i in range(len(reps))], reps


def differences(
    replicas: Iterable[Replica] | Mapping[str, Replica], *, docs: Iterable[str] | None = None
) -> list[Difference]:
    """Every place where the replicas' values or shared-type kinds differ (empty when they
    agree). A document one replica lacks counts as an empty one. Then format them with
    :meth:`Difference.describe`, or call
    :func:`~crdtsync.testing.assertions.assert_converged` instead."""
    _, reps = _named(replicas)
    doc_ids = sorted({d for r in reps for d in r.doc_ids()}) if docs is None else list(docs)
    out: list[Difference] = []
    for doc_id in doc_ids:
        roots = [r.raw(doc_id, ()) if r.has_doc(doc_id) else _EMPTY_ROOT for r in reps]
        _diff_nodes(doc_id, (), roots, out)
    return out
