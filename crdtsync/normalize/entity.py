"""Entity types: what an entity is, how it is identified, versioned and stored.

::

    todo = EntityType("todo", id="id", version="updated_at")
    user = EntityType("user", id=lambda u: u["login"], partition="entity")
    post = EntityType("post", relations={"author": user, "comments": [comment]})

``partition`` decides which document holds an entity: ``"type"`` (one document per type,
``entity:todo``), ``"entity"`` (one per entity, ``entity:todo:5``), an ``int`` n (n shards,
``entity:todo#3``), or a function of the id (per tenant, say). ``granularity`` decides how an
entity is stored: ``"fields"`` (a CRDT map of plain field values: concurrent edits of
different fields merge), ``"deep"`` (CRDT maps and arrays all the way down) or ``"plain"``
(one last-writer-wins value: half the memory, no per-field merge). docs/normalization.md has
the measured costs.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import InvalidValueError

Granularity = Literal["fields", "deep", "plain"]
Partition = Literal["type", "entity"] | int | Callable[[str], str]


@dataclass(frozen=True, eq=False)
class EntityType:
    name: str
    id: str | Callable[[Mapping[str, Any]], Any] = "id"
    version: str | Callable[[Mapping[str, Any]], Any] | None = None
    partition: Partition = "type"
    granularity: Granularity = "fields"
    relations: Mapping[str, Any] = field(default_factory=dict)
    gc_time: float = 300.0
    # The document of every entity with partition "type" (else None), and how deep an entity
    # is stored as CRDT types (from granularity): set in __post_init__.
    fixed_doc: str | None = field(init=False, repr=False)
    depth: int | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.name or not isinstance(self.name, str):
            raise ValueError("an entity type needs a non-empty name")
        if self.granularity not in ("fields", "deep", "plain"):
            raise ValueError(f"granularity must be 'fields', 'deep' or 'plain', got {self.granularity!r}")
        if isinstance(self.partition, int) and not isinstance(self.partition, bool) and self.partition < 1:
            raise ValueError("a shard count must be >= 1")
        # Computed once: both are read per entity on hot paths.
        object.__setattr__(self, "fixed_doc", f"entity:{self.name}" if self.partition == "type" else None)
        object.__setattr__(self, "depth", {"fields": 1, "deep": None, "plain": 0}[self.granularity])

    def id_of(self, obj: Any) -> str:
        """The entity's id as a string; raises InvalidValueError when it has none."""
        if type(obj) is not dict and not isinstance(obj, Mapping):
            raise InvalidValueError(f"a {self.name} entity must be a mapping, got {type(obj).__name__}")
        try:
            raw = self.id(obj) if callable(self.id) else obj[self.id]
        except (KeyError, TypeError) as exc:
            raise InvalidValueError(f"a {self.name} entity has no id ({self.id!r}): {obj!r}") from exc
        if isinstance(raw, bool) or not isinstance(raw, (str, int)):
            raise InvalidValueError(f"a {self.name} id must be str or int, got {raw!r}")
        return str(raw)

    def version_of(self, obj: Mapping[str, Any]) -> Any:
        if self.version is None:
            return None
        return self.version(obj) if callable(self.version) else obj.get(self.version)

    def doc_id(self, eid: str) -> str:
        p = self.partition
        if p == "type":
            return f"entity:{self.name}"
        if p == "entity":
            return f"entity:{self.name}:{eid}"
        if isinstance(p, int):
            return f"entity:{self.name}#{zlib.crc32(eid.encode()) % p}"
        if callable(p):
            return str(p(eid))
        raise ValueError(f"bad partition {p!r}")

    def __repr__(self) -> str:
        return f"EntityType({self.name!r})"


def is_newer_or_same(incoming: Any, current: Any) -> bool:
    """Version order: numbers and strings (ISO timestamps) compare naturally; an incoming
    version that cannot be compared with the current one is accepted."""
    if incoming is None or current is None:
        return True
    try:
        return bool(incoming >= current)
    except TypeError:
        return True
