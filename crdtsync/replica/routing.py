"""Routing: which document, and which path inside it, holds a query key's data.

Default rule: the first key part names the document and the remaining parts name one slot
in its root map, so ``("todos", 5)`` is document ``todos``, path ``("5",)``. Longer keys get
one flat slot too, named by the JSON of the remaining parts (``("todos", "list", {"page": 2})``
is path ``('["list",{"page":2}]',)``), so one key's data never nests inside another's. A
one-part key such as ``("todos",)`` lives at path ``("$",)`` (a document's root is a map, and
a list result needs a slot of its own).

Register rules for other shapes; the first rule that matches wins, the default comes last::

    router.add(("project", "{pid}", "tasks"), doc="project:{pid}", path=("tasks",))
    router.add(("user", "{uid}", ...), doc="user:{uid}", path=())   # ``...``: the rest of the key

Placeholders ``{name}`` match any one part; other strings match that exact part. A trailing
``...`` matches any remaining parts, which are appended to the path. ``doc`` and ``path`` may
also be functions of the key. ``depth`` says how many container levels below the path become
CRDT maps and arrays (``None``: all; ``0``: the whole value is one last-writer-wins leaf);
see docs/queries.md for the measured trade-off.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import EllipsisType
from typing import Any

from ..errors import RoutingError
from ..keys import QueryKey, key_part_str, normalize_key

_PLACEHOLDER = re.compile(r"^\{([A-Za-z_][A-Za-z0-9_]*)\}$")
ROOT_SLOT = "$"


@dataclass(frozen=True, slots=True)
class Route:
    """Where a key's data lives: document id, path of map keys inside its root, CRDT depth."""

    doc_id: str
    path: tuple[str, ...]
    depth: int | None = None


DocSpec = str | Callable[[QueryKey], str]
PathSpec = Sequence[str] | Callable[[QueryKey], Sequence[str]]


@dataclass(frozen=True)
class _Rule:
    pattern: tuple[str, ...]
    rest: bool
    doc: DocSpec
    path: PathSpec
    depth: int | None

    def match(self, key: QueryKey) -> dict[str, str] | None:
        if len(key) < len(self.pattern) or (not self.rest and len(key) != len(self.pattern)):
            return None
        captures: dict[str, str] = {}
        for pat, part in zip(self.pattern, key, strict=False):
            m = _PLACEHOLDER.match(pat)
            if m:
                captures[m.group(1)] = key_part_str(part)
            elif not isinstance(part, str) or part != pat:
                return None
        return captures

    def build(self, key: QueryKey, captures: dict[str, str]) -> Route:
        try:
            doc_id = self.doc(key) if callable(self.doc) else self.doc.format(**captures)
            raw_path = self.path(key) if callable(self.path) else [p.format(**captures) for p in self.path]
        except (KeyError, IndexError, ValueError) as exc:
            raise RoutingError(f"route {self.pattern!r} cannot build a location for {key!r}: {exc}") from exc
        path = tuple(str(p) for p in raw_path)
        if self.rest:
            path += tuple(key_part_str(p) for p in key[len(self.pattern) :])
        if not path:
            path = (ROOT_SLOT,)
        return Route(doc_id, path, self.depth)


class Router:
    """Maps query keys to :class:`Route` s. Call :meth:`add` for your own key shapes."""

    def __init__(self, *, default_depth: int | None = None):
        self._rules: list[_Rule] = []
        self.default_depth = default_depth

    def add(
        self,
        pattern: Sequence[str | EllipsisType],
        *,
        doc: DocSpec,
        path: PathSpec = (),
        depth: int | EllipsisType | None = ...,
    ) -> None:
        """Register a rule; rules are tried in the order added, before the default."""
        parts = list(pattern)
        rest = bool(parts) and parts[-1] is Ellipsis
        if rest:
            parts = parts[:-1]
        if not parts or not all(isinstance(p, str) for p in parts):
            raise RoutingError(f"a route pattern is non-empty str parts (and a final ...): {pattern!r}")
        if depth is not Ellipsis and depth is not None and (not isinstance(depth, int) or depth < 0):
            raise RoutingError(f"depth must be None or an int >= 0, got {depth!r}")
        resolved_depth: Any = self.default_depth if depth is Ellipsis else depth
        self._rules.append(_Rule(tuple(str(p) for p in parts), rest, doc, path, resolved_depth))

    def resolve(self, key: Sequence[Any]) -> Route:
        """The route of ``key``; raises :class:`RoutingError` when a rule cannot build it."""
        nkey = normalize_key(key)
        for rule in self._rules:
            captures = rule.match(nkey)
            if captures is not None:
                return rule.build(nkey, captures)
        return Route(key_part_str(nkey[0]), (default_slot(nkey[1:]),), self.default_depth)


def default_slot(rest: Sequence[Any]) -> str:
    """The root-map slot of a key's parts after the document part (see the module docs)."""
    if not rest:
        return ROOT_SLOT
    if len(rest) == 1:
        return key_part_str(rest[0])
    return json.dumps(list(rest), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
