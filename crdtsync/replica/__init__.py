"""Documents and key routing: :class:`Replica`, :class:`Router`, :class:`Route`."""

from .replica import ROOT_NAME, Replica
from .routing import ROOT_SLOT, Route, Router, default_slot

__all__ = ["ROOT_NAME", "ROOT_SLOT", "Replica", "Route", "Router", "default_slot"]
