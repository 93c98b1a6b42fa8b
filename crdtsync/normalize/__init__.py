"""Normalized entities: one copy of each entity, referenced by every query that contains it."""

from .changes import ChangeEvent, ChangeFeed
from .entity import EntityType
from .shape import check_shape, denormalize, normalize
from .store import EntityStore

__all__ = ["ChangeEvent", "ChangeFeed", "EntityStore", "EntityType", "check_shape", "denormalize", "normalize"]
