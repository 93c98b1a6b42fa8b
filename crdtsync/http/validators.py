"""Conditional GETs: the ``ETag`` and ``Last-Modified`` validators kept per query key.

After a 200 that carried a validator, the store keeps it with the URL and the parsed body.
The next GET of the same key and URL sends ``If-None-Match`` / ``If-Modified-Since``; on a 304
the query function returns the kept body, which equals what the query already stored, so the
diff-write changes nothing: no CRDT update, no new data object, no observer told about data.
Keeping the server's body (not the cached value) matters: the cache may show optimistic or
peer edits, and a 304 says the *server's* value is unchanged.

The store is bounded (least recently used out first), so validators of queries that were
garbage-collected do not pile up.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..keys import hash_key


@dataclass(frozen=True, slots=True)
class Validator:
    """What a 200 said about one query key: its URL, validators and parsed body."""

    url: str
    etag: str | None
    last_modified: str | None
    data: Any

    def request_headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self.etag is not None:
            headers["If-None-Match"] = self.etag
        if self.last_modified is not None:
            headers["If-Modified-Since"] = self.last_modified
        return headers


class ValidatorStore:
    """Validators by query key, at most ``max_entries`` of them."""

    def __init__(self, max_entries: int = 1024):
        if max_entries < 1:
            raise ValueError(f"max_entries must be >= 1, got {max_entries!r}")
        self.max_entries = max_entries
        self._entries: OrderedDict[str, Validator] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, query_key: Sequence[Any], url: str) -> Validator | None:
        """The validator for ``query_key`` when it was taken from the same ``url``."""
        h = hash_key(query_key)
        found = self._entries.get(h)
        if found is None or found.url != url:
            return None
        self._entries.move_to_end(h)
        return found

    def etag(self, query_key: Sequence[Any]) -> str | None:
        """The last ``ETag`` the server sent for ``query_key`` (send it as ``If-Match``)."""
        found = self._entries.get(hash_key(query_key))
        return None if found is None else found.etag

    def store(self, query_key: Sequence[Any], url: str, headers: Mapping[str, str], data: Any) -> None:
        """Keep the validators of a 200 (or forget the key when the answer had none)."""
        h = hash_key(query_key)
        etag = headers.get("etag")
        last_modified = headers.get("last-modified")
        if etag is None and last_modified is None:
            self._entries.pop(h, None)
            return
        self._entries[h] = Validator(url, etag, last_modified, data)
        self._entries.move_to_end(h)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def forget(self, query_key: Sequence[Any] | None = None) -> None:
        """Drop one key's validators, or all of them (the next GET is unconditional)."""
        if query_key is None:
            self._entries.clear()
        else:
            self._entries.pop(hash_key(query_key), None)
