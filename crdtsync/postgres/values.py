"""PostgreSQL text-format values to document values, by type OID.

Logical replication (pgoutput, text format) and the initial copy (``SELECT col::text``) both
produce text; both go through :func:`from_text`, so a copied row and a streamed row of the
same data are equal. Integers, booleans, finite floats and JSON become Python values; every
other type (numeric, timestamps, uuid, arrays...) stays the exact text PostgreSQL printed.
"""

from __future__ import annotations

import json
import math
from typing import Any, Final

_INTS: Final = frozenset({20, 21, 23, 26})  # int8, int2, int4, oid
_FLOATS: Final = frozenset({700, 701})  # float4, float8
_BOOL: Final = 16
_JSON: Final = frozenset({114, 3802})  # json, jsonb


def from_text(type_oid: int, text: str | None) -> Any:
    """The document value of one column given as PostgreSQL text (``None`` is SQL NULL)."""
    if text is None:
        return None
    if type_oid in _INTS:
        return int(text)
    if type_oid == _BOOL:
        return text in ("t", "true")  # boolout prints t, the bool::text cast true
    if type_oid in _FLOATS:
        f = float(text)
        return f if math.isfinite(f) else text
    if type_oid in _JSON:
        return json.loads(text)
    return text
