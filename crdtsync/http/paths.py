"""URL paths from query keys and mutation variables. Pure functions only.

- A query path template is filled from the key by position: ``"/todos/{1}"`` with key
  ``("todos", 5)`` gives ``/todos/5``; ``{1[page]}`` reads a mapping part; ``{page}`` is an
  infinite query's page parameter.
- Without a template, the key *is* the path (TanStack's "default query function" recipe):
  ``("todos", 5)`` gives ``/todos/5`` and every mapping part becomes query parameters, so
  ``("todos", {"status": "done"})`` gives ``/todos?status=done``.
- A mutation path template is filled from the variables by name (``"/todos/{id}"``) when they
  are a mapping, else by position (``{0}``).

Every value put into a path is percent-encoded as one segment, and an integral float
(``5.0``) is written as an int.
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote


class _SegmentFormatter(string.Formatter):
    def format_field(self, value: Any, format_spec: str) -> str:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return quote(format(value, format_spec), safe="")


_FORMATTER = _SegmentFormatter()


def query_path(template: str | None, query_key: Sequence[Any], page_param: Any = None) -> tuple[str, dict[str, Any]]:
    """The path and the query parameters for ``query_key``."""
    if template is not None:
        return _FORMATTER.format(template, *query_key, page=page_param), {}
    segments: list[str] = []
    params: dict[str, Any] = {}
    for part in query_key:
        if isinstance(part, Mapping):
            params.update(part)
        else:
            segments.append(_FORMATTER.format_field(part, ""))
    return "/" + "/".join(segments), params


def mutation_path(template: str, variables: Any) -> str:
    """The path for a mutation's ``variables``."""
    if isinstance(variables, Mapping):
        return _FORMATTER.vformat(template, (), variables)
    return _FORMATTER.format(template, variables)


def entity_tag(version: Any) -> str:
    """An ``If-Match`` value: a version as a strong entity tag (``3`` gives ``"3"``); a value
    that already is an entity tag (quoted, or weak ``W/"..."``) is kept as it is."""
    if isinstance(version, float) and version.is_integer():
        version = int(version)
    text = str(version)
    if (text.startswith('"') and text.endswith('"') and len(text) >= 2) or text.startswith('W/"'):
        return text
    return f'"{text}"'
