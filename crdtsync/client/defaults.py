"""Defaults: every option default of one client, queries and mutations, resolved in one place.

Query options resolve as: the built-in defaults of :class:`~crdtsync.query.options.QueryOptions`
and :class:`~crdtsync.query.options.ObserverOptions`, then the client-wide ``default_options``,
then every ``set_query_defaults(prefix, ...)`` whose prefix matches the key (later calls win),
then the call's own options.

Mutation options resolve the same way (see :mod:`crdtsync.mutations.options`), except the
lifecycle callbacks: the defaults' ``on_success`` / ``on_error`` / ``on_settled`` run first and
the call's after them; ``on_mutate`` is the call's when given, else the defaults'.

Conflict policies (``set_conflict_policy(prefix, policy)``) are per-key defaults too: a
mutation's own ``conflict_policy`` wins over them, and ``"crdt"`` applies when none matches.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from ..core.network import NetworkMode
from ..keys import QueryKey, normalize_key, partial_match_key
from ..mutations.conflicts import ConflictPolicy, check_policy
from ..mutations.options import CALLBACK_NAMES, Callbacks, MutationOptions, check_names
from ..query.options import ObserverOptions, QueryFn, QueryOptions

_QUERY_FIELDS = {f.name for f in dataclasses.fields(QueryOptions)}
_OBSERVER_FIELDS = {f.name for f in dataclasses.fields(ObserverOptions)}


def _by_prefix(entries: list[tuple[QueryKey, dict[str, Any]]], key: Sequence[Any] | None) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    if key is None:
        return merged
    nkey = normalize_key(key)
    for prefix, opts in entries:
        if partial_match_key(nkey, prefix):
            merged.update(opts)
    return merged


class Defaults:
    def __init__(self, default_options: dict[str, Any] | None = None) -> None:
        self.queries: dict[str, Any] = dict(default_options or {})
        self._query_keys: list[tuple[QueryKey, dict[str, Any]]] = []
        self._mutation_keys: list[tuple[QueryKey, dict[str, Any]]] = []
        self._policies: list[tuple[QueryKey, ConflictPolicy]] = []

    # -- queries -----------------------------------------------------------------------------
    @staticmethod
    def check_query_names(options: dict[str, Any]) -> None:
        unknown = set(options) - _QUERY_FIELDS - _OBSERVER_FIELDS
        if unknown:
            raise TypeError(f"unknown query option(s): {', '.join(sorted(unknown))}")

    def set_query_defaults(self, query_key: Sequence[Any], options: dict[str, Any]) -> None:
        self.check_query_names(options)
        self._query_keys.append((normalize_key(query_key), options))

    def get_query_defaults(self, query_key: Sequence[Any]) -> dict[str, Any]:
        return _by_prefix(self._query_keys, query_key)

    def query_options(self, query_key: Sequence[Any], query_fn: QueryFn | None,
                      overrides: dict[str, Any]) -> tuple[QueryOptions, ObserverOptions]:
        """The options of one query and of one observer of it, all defaults applied."""
        self.check_query_names(overrides)
        key = normalize_key(query_key)
        merged: dict[str, Any] = {**self.queries, **self.get_query_defaults(key), **overrides}
        if query_fn is not None:
            merged["query_fn"] = query_fn
        q_opts = {k: v for k, v in merged.items() if k in _QUERY_FIELDS and k != "query_key"}
        o_opts = {k: v for k, v in merged.items() if k in _OBSERVER_FIELDS}
        return QueryOptions(query_key=key, **q_opts), ObserverOptions(**o_opts)

    # -- mutations ---------------------------------------------------------------------------
    def set_mutation_defaults(self, mutation_key: Sequence[Any], options: dict[str, Any]) -> None:
        check_names(options)
        if "conflict_policy" in options:
            check_policy(options["conflict_policy"])
        self._mutation_keys.append((normalize_key(mutation_key), dict(options)))

    def get_mutation_defaults(self, mutation_key: Sequence[Any] | None) -> dict[str, Any]:
        return _by_prefix(self._mutation_keys, mutation_key)

    def mutation_options(self, options: dict[str, Any],
                         extra: Callbacks | None = None) -> tuple[MutationOptions, Callbacks]:
        """The options and the lifecycle callbacks of one mutation, all defaults applied;
        ``extra``: callbacks that run last (a mutation observer's per-call ones)."""
        check_names(options)
        if "conflict_policy" in options:
            check_policy(options["conflict_policy"])
        if options.get("mutation_key") is not None:
            options = {**options, "mutation_key": normalize_key(options["mutation_key"])}
        defaults = self.get_mutation_defaults(options.get("mutation_key"))
        merged = {**defaults, **{k: v for k, v in options.items() if k not in CALLBACK_NAMES}}
        callbacks = Callbacks(
            on_mutate=options.get("on_mutate") or defaults.get("on_mutate"),
            on_success=_chain(defaults.get("on_success"), options.get("on_success"), extra and extra.on_success),
            on_error=_chain(defaults.get("on_error"), options.get("on_error"), extra and extra.on_error),
            on_settled=_chain(defaults.get("on_settled"), options.get("on_settled"), extra and extra.on_settled),
        )
        merged.pop("on_mutate", None)
        for name in CALLBACK_NAMES:
            merged.pop(name, None)
        if isinstance(merged.get("network_mode"), str):
            merged["network_mode"] = NetworkMode(merged["network_mode"])
        return MutationOptions(**merged), callbacks

    # -- conflict policies -------------------------------------------------------------------
    def set_conflict_policy(self, query_key: Sequence[Any], policy: ConflictPolicy) -> None:
        check_policy(policy)
        self._policies.append((normalize_key(query_key), policy))

    def conflict_policy(self, key: QueryKey, own: ConflictPolicy | None = None) -> ConflictPolicy:
        """``own`` (a mutation's ``conflict_policy``) when set, else the last matching prefix's."""
        if own is not None:
            return own
        chosen: ConflictPolicy = "crdt"
        for prefix, policy in self._policies:
            if partial_match_key(key, prefix):
                chosen = policy
        return chosen


def _chain(*fns: Any) -> tuple[Callable[..., Any], ...]:
    out: list[Callable[..., Any]] = []
    for f in fns:
        if isinstance(f, tuple):
            out.extend(f)
        elif f is not None:
            out.append(f)
    return tuple(out)
