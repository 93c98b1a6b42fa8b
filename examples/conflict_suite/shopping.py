"""A tiny app: a shared shopping list stored in a crdtsync Replica.

Each item lives at its own slot of document ``"shopping"``: ``{"qty": int, "done": bool}``, so
two people editing different items never conflict, and edits to different fields of one item
merge field by field.
"""

from __future__ import annotations

from typing import Any

from crdtsync.replica import Replica
from crdtsync.values import MISSING

DOC = "shopping"


class ShoppingList:
    """The app's API over one replica. Every method is one transaction."""

    def __init__(self, replica: Replica):
        self.replica = replica

    def add(self, name: str, qty: int = 1) -> None:
        """Add ``name`` (or raise its quantity if it is already on the list)."""
        current = self.replica.read_path(DOC, (name,))
        if current is MISSING:
            self.replica.write_path(DOC, (name,), {"qty": qty, "done": False})
        else:
            self.replica.write_path(DOC, (name, "qty"), current.get("qty", 0) + qty)

    def set_qty(self, name: str, qty: int) -> None:
        if self.replica.read_path(DOC, (name,)) is not MISSING:
            self.replica.write_path(DOC, (name, "qty"), qty)

    def check(self, name: str) -> None:
        """Mark ``name`` as bought."""
        if self.replica.read_path(DOC, (name,)) is not MISSING:
            self.replica.write_path(DOC, (name, "done"), True)

    def remove(self, name: str) -> None:
        self.replica.delete_path(DOC, (name,))

    def items(self) -> dict[str, Any]:
        value = self.replica.read_path(DOC, ())
        return {} if value is MISSING else dict(value)
