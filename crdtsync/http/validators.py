"""Conditional GETs: the ``ETag`` and ``Last-Modified`` validators kept per query key.

After a 200 that carried a validator, the store keeps it with the parsed body, by query key
and URL (so each page of an infinite query has its own). The next GET of the same key and
URL sends ``If-None-Match`` / ``If-Modified-Since``; on a 304
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
    """What a 200 said about one query key and URL: its validators and parsed body."""

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
    """Validators by query key and URL, at most ``max_entries`` of them. ``headers`` given to
    :meth:`store` are an ``httpx.Headers`` or a mapping with lower-case names."""

    def __init__(self, max_entries: int = 1024):
        if max_entries < 1:
            raise ValueError(f"max_entries must be >= 1, got {max_entries!r}")
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[str, str], Validator] = OrderedDict()
        self._last_url: dict[str, str] = {}  # key hash -> URL of its latest 200

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, query_key: Sequence[Any], url: str) -> Validator | None:
        """The validator taken for ``query_key`` from ``url``, if any."""
        slot = (hash_key(query_key), url)
        found = self._entries.get(slot)
        if found is not None:
            self._entries.move_to_end(slot)
        return found

    def etag(self, query_key: Sequence[Any]) -> str | None:
        """The ``ETag`` of the latest 200 for ``query_key`` (send it as ``If-Match``)."""
        h = hash_key(query_key)
        url = self._last_url.get(h)
        found = None if url is None else self._entries.get((h, url))
        return None if found is None else found.etag

    def store(self, query_key: Sequence[Any], url: str, headers: Mapping[str, str], data: Any) -> None:
        """Keep the validators of a 200 (or forget that key and URL when it had none)."""
        slot = (hash_key(query_key), url)
        etag = headers.get("etag")
        last_modified = headers.get("last-modified")
        if etag is None and last_modified is None:
            self._entries.pop(slot, None)
            self._last_url.pop(slot[0], None)  # the latest 200 had no ETag
            return
        self._last_url[slot[0]] = url  # never more pointers than entries
        self._entries[slot] = Validator(etag, last_modified, data)
        self._entries.move_to_end(slot)
        while len(self._entries) > self.max_entries:
            (h, old_url), _ = self._entries.popitem(last=False)
            if self._last_url.get(h) == old_url:
                del self._last_url[h]

    def forget(self, query_key: Sequence[Any] | None = None) -> None:
        """Drop one key's validators (every URL), or all of them: the next GETs are unconditional."""
        if query_key is None:
            self._entries.clear()
            self._last_url.clear()
            return
        h = hash_key(query_key)
        self._last_url.pop(h, None)
        for slot in [slot for slot in self._entries if slot[0] == h]:
            del self._entries[slot]
