"""Query key families and invalidation cascades.

Declare the keys of a resource once instead of building tuples by hand::

    users = KeyFamily("users", detail=lambda uid: (uid,), list=lambda **f: ("list", f))
    posts = KeyFamily("posts", by_user=lambda uid: ("by_user", uid))
    users.all               # ("users",)
    users.detail(5)         # ("users", 5)
    posts.by_user(5)        # ("posts", "by_user", 5)

and say which keys depend on which, so one invalidation reaches them all::

    cascades = Cascades()
    cascades.add(users.all, lambda key: posts.by_user(key[1]) if len(key) > 1 else posts.all)
    client = QueryClient(cascades=cascades)
    await client.invalidate_queries(users.detail(5))   # also invalidates ("posts", "by_user", 5)

A cascade applies when the invalidated key starts with its source prefix; its function maps
the invalidated key to one dependent prefix, a list of them, or None. Cascades chain (posts
can cascade further) and cycles are cut.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..keys import QueryKey, hash_key, normalize_key, partial_match_key

KeyMaker = Callable[..., Sequence[Any]]


class KeyFamily:
    """A named family of keys: ``family.all`` and one method per declared shape."""

    def __init__(self, name: str, /, **shapes: KeyMaker):
        self.name = name
        self.all: QueryKey = normalize_key((name,))
        self._shapes = dict(shapes)

    def __getattr__(self, shape: str) -> Callable[..., QueryKey]:
        try:
            maker = self._shapes[shape]
        except KeyError:
            raise AttributeError(f"key family {self.name!r} has no shape {shape!r}") from None

        def build(*args: Any, **kwargs: Any) -> QueryKey:
            return normalize_key((self.name, *maker(*args, **kwargs)))

        return build

    def __repr__(self) -> str:
        return f"KeyFamily({self.name!r}, shapes={sorted(self._shapes)})"


CascadeFn = Callable[[QueryKey], Sequence[Any] | list[Sequence[Any]] | None]


class Cascades:
    """Invalidation dependencies between key prefixes."""

    def __init__(self) -> None:
        self._rules: list[tuple[QueryKey, CascadeFn]] = []

    def add(self, source: Sequence[Any], dependents: CascadeFn | Sequence[Any]) -> None:
        """When a key under ``source`` is invalidated, also invalidate ``dependents`` (a prefix,
        or a function of the invalidated key returning a prefix, a list of prefixes, or None)."""
        src = normalize_key(source)
        if callable(dependents):
            self._rules.append((src, dependents))
        else:
            fixed = normalize_key(dependents)
            self._rules.append((src, lambda _key: fixed))

    def expand(self, key: Sequence[Any]) -> list[QueryKey]:
        """``key`` followed by every prefix it cascades to, each once."""
        start = normalize_key(key)
        out: list[QueryKey] = [start]
        seen = {hash_key(start)}
        i = 0
        while i < len(out):
            current = out[i]
            i += 1
            for src, fn in self._rules:
                if not partial_match_key(current, src):
                    continue
                result = fn(current)
                if result is None:
                    continue
                many = result if (isinstance(result, list) and result and not isinstance(result[0], str)
                                  and isinstance(result[0], (list, tuple))) else [result]
                for dep in many:
                    nk = normalize_key(dep)
                    h = hash_key(nk)
                    if h not in seen:
                        seen.add(h)
                        out.append(nk)
        return out
