"""Shapes: where the entities are inside a query's result.

A shape is an :class:`EntityType` (the value is one entity), a one-element list ``[shape]``
(a list of such values), a dict ``{"field": shape, ...}`` (those fields have that shape; other
fields are kept as they are), or ``None`` (plain data). Entities are replaced by their id in
the query's own stored data and stored once each in their entity document.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from ..errors import InvalidValueError
from .entity import EntityType

Ref = tuple[EntityType, str]


def check_shape(shape: Any) -> None:
    if shape is None or isinstance(shape, EntityType):
        return
    if isinstance(shape, list):
        if len(shape) != 1:
            raise ValueError("a list shape has exactly one element: [shape]")
        check_shape(shape[0])
        return
    if isinstance(shape, Mapping):
        for v in shape.values():
            check_shape(v)
        return
    raise ValueError(f"not a shape: {shape!r}")


class Found:
    """The entities met while normalizing, in order: three parallel lists rather than a tuple
    per entity (a 100,000-entity load allocates and frees 7 MB less)."""

    __slots__ = ("ids", "types", "values")

    def __init__(self) -> None:
        self.types: list[EntityType] = []
        self.ids: list[str] = []
        self.values: list[dict[str, Any]] = []

    def add(self, t: EntityType, eid: str, value: dict[str, Any]) -> None:
        self.types.append(t)
        self.ids.append(eid)
        self.values.append(value)

    def __iter__(self) -> Iterator[tuple[EntityType, str, dict[str, Any]]]:
        return zip(self.types, self.ids, self.values, strict=True)

    def __len__(self) -> int:
        return len(self.ids)


def normalize(value: Any, shape: Any, out: Found) -> Any:
    """``value`` with entities replaced by ids; each entity (relations normalized too) is
    added to ``out`` in the order met."""
    if shape is None or value is None:
        return value
    if isinstance(shape, EntityType):
        eid = shape.id_of(value)
        if not shape.relations:  # stored as it came (a copy only of a non-dict mapping)
            out.add(shape, eid, value if type(value) is dict else dict(value))
            return eid
        obj = dict(value)
        for fname, sub in shape.relations.items():
            if fname in obj:
                obj[fname] = normalize(obj[fname], sub, out)
        out.add(shape, eid, obj)
        return eid
    if isinstance(shape, list):
        if not isinstance(value, (list, tuple)):
            raise InvalidValueError(f"expected a list for shape {shape!r}, got {type(value).__name__}")
        inner = shape[0]
        if isinstance(inner, EntityType) and not inner.relations:  # the large case, inlined
            id_of, types, ids, values = inner.id_of, out.types, out.ids, out.values
            start = len(ids)
            for v in value:
                eid = id_of(v)
                types.append(inner)
                ids.append(eid)
                values.append(v if type(v) is dict else dict(v))
            return ids[start:]
        return [normalize(v, inner, out) for v in value]
    if not isinstance(value, Mapping):
        raise InvalidValueError(f"expected a mapping for shape {shape!r}, got {type(value).__name__}")
    return {k: normalize(v, shape[k], out) if k in shape else v for k, v in value.items()}


EntityKey = tuple[str, str]  # (document id, entity id)
_MISS = object()
# Where each entity sits in a result: one path (the common case, kept as a bare tuple to save
# memory) or a list of paths when it appears more than once.
Positions = dict[EntityKey, Any]


def add_position(positions: Positions, key: EntityKey, path: tuple[Any, ...]) -> None:
    have = positions.get(key)
    if have is None:
        positions[key] = path
    elif isinstance(have, list):
        have.append(path)
    else:
        positions[key] = [have, path]


def paths_of(positions: Positions, key: EntityKey) -> list[tuple[Any, ...]]:
    have = positions.get(key)
    if have is None:
        return []
    return have if isinstance(have, list) else [have]


class EntityList:
    """A list of entities without relations inside a result (the large case): the ids of the
    entities present, in result order, and those referenced but not stored. Item ``i`` of the
    list at ``path`` is entity ``present[i]``, so no per-entity position is kept: about 8 bytes
    an entity instead of a dict entry, a key tuple and a path tuple."""

    __slots__ = ("fixed_doc", "keyset", "missing", "path", "present", "type")

    def __init__(self, path: tuple[Any, ...], entity_type: EntityType) -> None:
        self.path = path
        self.type = entity_type
        self.fixed_doc = entity_type.fixed_doc
        self.present: list[str] = []
        self.missing: list[str] = []
        # Every id of the list (entity type as value), as built while deduplicating: handed over
        # once by Refs.by_doc (the store turns it into its referrer map), then None.
        self.keyset: dict[str, Any] | None = None

    def doc_of(self, eid: str) -> str:
        return self.fixed_doc if self.fixed_doc is not None else self.type.doc_id(eid)

    def entity_keys(self) -> Iterator[EntityKey]:
        fixed = self.fixed_doc
        doc_id = self.type.doc_id
        for ids in (self.present, self.missing):
            for eid in ids:
                yield (fixed if fixed is not None else doc_id(eid)), eid

    def same_as(self, other: EntityList) -> bool:
        return (self.type is other.type and self.path == other.path and self.present == other.present
                and self.missing == other.missing)


class Refs:
    """Every entity a query's result references, and where each one sits."""

    __slots__ = ("keys", "lists", "positions")

    def __init__(self) -> None:
        self.keys: dict[EntityKey, EntityType] = {}  # references outside entity lists
        self.positions: Positions = {}
        self.lists: list[EntityList] = []

    def by_doc(self) -> dict[str, dict[str, EntityType]]:
        """Every reference, by document then entity id (a new map each call)."""
        out: dict[str, dict[str, EntityType]] = {}
        for (doc_id, eid), t in self.keys.items():
            out.setdefault(doc_id, {})[eid] = t
        for lst in self.lists:
            t = lst.type
            keyset, lst.keyset = lst.keyset, None
            if lst.fixed_doc is not None:
                per = out.get(lst.fixed_doc)
                if keyset is None:
                    keyset = dict.fromkeys(lst.present, t)
                    keyset.update(dict.fromkeys(lst.missing, t))
                if per is None:
                    out[lst.fixed_doc] = keyset
                else:
                    per.update(keyset)
            else:
                for doc_id, eid in lst.entity_keys():
                    out.setdefault(doc_id, {})[eid] = t
        return out

    def drop_keysets(self) -> None:
        for lst in self.lists:
            lst.keyset = None

    def same_keys(self, other: Refs) -> bool:
        """True when both reference the same entities at the same places (a cheap check)."""
        return (self.keys.keys() == other.keys.keys() and len(self.lists) == len(other.lists)
                and all(a.same_as(b) for a, b in zip(self.lists, other.lists, strict=True)))


def denormalize(stored: Any, shape: Any, read: Callable[[EntityType, str], Any], refs: Refs,
                path: tuple[Any, ...] = (), caches: Mapping[str, Mapping[str, Any]] | None = None) -> Any:
    """The inverse of :func:`normalize`. Ids of entities that are not (or no longer) stored
    become ``None`` for a single reference and are skipped in lists; a list that names the same
    entity twice (two peers moved it concurrently) keeps its first occurrence.

    ``refs`` receives every referenced entity and where it sits in the result, so a change to
    one entity can be patched in without rebuilding the rest. ``caches`` (document -> id ->
    entity), when given, is looked up first for lists of one document's entities: the large
    case, spared a call of ``read`` per entity."""
    if shape is None or stored is None:
        return stored
    if isinstance(shape, EntityType):
        eid = str(stored)
        key = (shape.doc_id(eid), eid)
        refs.keys[key] = shape
        ent = read(shape, eid)
        if ent is not None:
            add_position(refs.positions, key, path)
        if ent is None or not shape.relations or not isinstance(ent, dict):
            return ent
        return {k: denormalize(v, shape.relations[k], read, refs, (*path, k), caches)
                if k in shape.relations else v for k, v in ent.items()}
    if isinstance(shape, list):
        if not isinstance(stored, list):
            return stored
        inner = shape[0]
        if isinstance(inner, EntityType) and not inner.relations:
            return _entity_list(stored, inner, read, refs, path, caches)
        if isinstance(inner, EntityType):
            out: list[Any] = []
            seen: set[str] = set()
            for item in stored:
                eid = str(item)
                if eid in seen:
                    continue
                seen.add(eid)
                value = denormalize(item, inner, read, refs, (*path, len(out)), caches)
                if value is not None:
                    out.append(value)
            return out
        return [denormalize(v, inner, read, refs, (*path, i), caches) for i, v in enumerate(stored)]
    if not isinstance(stored, dict):
        return stored
    return {k: denormalize(v, shape[k], read, refs, (*path, k), caches) if k in shape else v
            for k, v in stored.items()}


def _entity_list(stored: list[Any], t: EntityType, read: Callable[[EntityType, str], Any], refs: Refs,
                 path: tuple[Any, ...], caches: Mapping[str, Mapping[str, Any]] | None = None) -> list[Any]:
    """The hot case of :func:`denormalize`: a list of entities without relations."""
    lst = EntityList(path, t)
    refs.lists.append(lst)
    out: list[Any] = []
    present, missing = lst.present, lst.missing
    seen: dict[str, Any] = {}
    lst.keyset = seen
    cache = caches.get(t.fixed_doc) if caches is not None and t.fixed_doc is not None else None
    cached = cache.get if cache is not None else None
    for item in stored:
        eid = item if type(item) is str else str(item)
        if eid in seen:
            continue
        seen[eid] = t
        ent = cached(eid, _MISS) if cached is not None else _MISS
        if ent is _MISS:
            ent = read(t, eid)
        if ent is None:
            missing.append(eid)
            continue
        present.append(eid)
        out.append(ent)
    return out


def patch(data: Any, changes: list[tuple[tuple[Any, ...], Any]]) -> Any:
    """A copy of ``data`` with ``value`` placed at each ``path``; only the containers on those
    paths are copied, everything else is shared with ``data``."""
    if not changes:
        return data
    for path, value in changes:
        if not path:  # the whole result is the entity
            return value
    root = list(data) if isinstance(data, list) else dict(data)
    copied: dict[tuple[Any, ...], Any] = {(): root}
    for path, value in changes:
        node = root
        for i in range(len(path) - 1):
            prefix = path[: i + 1]
            nxt = copied.get(prefix)
            if nxt is None:
                child = node[path[i]]
                nxt = list(child) if isinstance(child, list) else dict(child)
                node[path[i]] = nxt
                copied[prefix] = nxt
            node = nxt
        node[path[-1]] = value
    return root
