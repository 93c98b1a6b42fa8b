"""Hypothesis strategies for conflict suites. Every argument is keyword-only and checked
when the strategy is built, so a bad argument fails at once with hypothesis's
``InvalidArgument`` instead of deep inside a test run.

- :func:`json_values`: values that round-trip through a Replica exactly (ints, integral and
  non-integral floats, bools, None, unicode strings, lists, dicts).
- :func:`query_keys`: valid query keys.
- :func:`edit_ops`: :mod:`~crdtsync.testing.ops` edit operations on a few documents and slots.
- :func:`mutation_scripts`: lists of optimistic :class:`~crdtsync.testing.ops.Mutation` s,
  some of which fail.
- :func:`schedules`: a :class:`~crdtsync.testing.schedule.Schedule` for N peers: edits and
  mutations interleaved with partitions and heals, message faults, crashes and restarts.

A first property::

    @given(schedules(peers=3))
    async def test_converges(schedule):
        net = schedule.network()
        await net.run_schedule(schedule)
        await net.heal_all()
        assert_converged(net.named_replicas())
        assert_no_acknowledged_loss(net)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from ..values import FLOAT_TAG
from .network import LinkFaults
from .ops import (
    DeleteKey,
    EditOp,
    ListInsert,
    ListMove,
    ListRemove,
    Mutation,
    SetField,
    SetValue,
    TextDelete,
    TextInsert,
)
from .schedule import (
    Advance,
    ClientMutate,
    ClientSettle,
    Crash,
    Edit,
    Heal,
    Mutate,
    Partition,
    Restart,
    Schedule,
    SetFaults,
    Settle,
    Step,
)

__all__ = [
    "EDIT_KINDS",
    "FAULT_KINDS",
    "MUTATION_LAYERS",
    "edit_ops",
    "json_values",
    "mutation_scripts",
    "query_keys",
    "schedules",
]

MAX_SAFE_INT = 2**53
EDIT_KINDS = (
    "set",
    "set_field",
    "delete",
    "list_insert",
    "list_remove",
    "list_move",
    "text_insert",
    "text_delete",
)
FAULT_KINDS = ("drop", "duplicate", "reorder", "delay", "corrupt", "truncate", "partition", "crash")
MUTATION_LAYERS = ("model", "client")


def _check_int(name: str, value: Any, *, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(f"{name} must be an int, got {value!r}")
    if value < minimum:
        raise InvalidArgument(f"{name} must be >= {minimum}, got {value!r}")
    return value


def _check_names(name: str, values: Any) -> tuple[str, ...]:
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise InvalidArgument(f"{name} must be a sequence of str, got {values!r}")
    out = tuple(values)
    if not out or not all(isinstance(v, str) and v for v in out):
        raise InvalidArgument(f"{name} must be a non-empty sequence of non-empty str, got {values!r}")
    if len(set(out)) != len(out):
        raise InvalidArgument(f"{name} must not repeat names, got {values!r}")
    return out


def _check_prob(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise InvalidArgument(f"{name} must be a probability in [0, 1], got {value!r}")
    return float(value)


def _check_kinds(name: str, values: Any, allowed: Sequence[str]) -> tuple[str, ...]:
    kinds = _check_names(name, values) if values else ()
    unknown = [k for k in kinds if k not in allowed]
    if unknown:
        raise InvalidArgument(f"unknown {name} {unknown!r}; choose from {list(allowed)!r}")
    return kinds


# -- values ---------------------------------------------------------------------------------


def json_values(
    *,
    max_depth: int = 3,
    max_leaves: int = 10,
    allow_floats: bool = True,
    allow_integral_floats: bool = True,
    max_string_size: int = 10,
    max_size: int = 4,
) -> st.SearchStrategy[Any]:
    """JSON-like values that read back from a Replica exactly (``strict_equal``).

    ``max_depth`` bounds container nesting (0: scalars only), ``max_leaves`` the scalars in
    one value, ``max_size`` the items of one list or dict. Ints stay within +-2**53 (numbers
    are 64-bit floats in Yjs). ``allow_integral_floats`` adds floats such as ``5.0``.
    """
    _check_int("max_depth", max_depth)
    _check_int("max_leaves", max_leaves, minimum=1)
    _check_int("max_string_size", max_string_size)
    _check_int("max_size", max_size)
    if not isinstance(allow_floats, bool) or not isinstance(allow_integral_floats, bool):
        raise InvalidArgument("allow_floats and allow_integral_floats must be bool")
    scalars: list[st.SearchStrategy[Any]] = [
        st.none(),
        st.booleans(),
        st.integers(min_value=-MAX_SAFE_INT, max_value=MAX_SAFE_INT),
        st.text(max_size=max_string_size),
    ]
    if allow_floats:
        finite = st.floats(allow_nan=False, allow_infinity=False)
        if allow_integral_floats:
            scalars.append(finite)
            scalars.append(st.integers(-(2**20), 2**20).map(float))
        else:
            scalars.append(finite.filter(lambda f: not f.is_integer()))
    leaf = st.one_of(*scalars)
    if max_depth == 0:
        return leaf
    keys = st.text(max_size=max_string_size).filter(lambda k: k != FLOAT_TAG)

    def extend(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return st.one_of(
            st.lists(children, max_size=max_size),
            st.dictionaries(keys, children, max_size=max_size),
        )

    nested = st.recursive(leaf, extend, max_leaves=max_leaves)
    return nested.filter(lambda v: _depth(v) <= max_depth)


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def query_keys(
    *, min_parts: int = 1, max_parts: int = 4, allow_mappings: bool = True, max_string_size: int = 8
) -> st.SearchStrategy[tuple[Any, ...]]:
    """Valid query keys: a str first part, then str, int or (optionally) mapping parts."""
    _check_int("min_parts", min_parts, minimum=1)
    _check_int("max_parts", max_parts, minimum=1)
    _check_int("max_string_size", max_string_size)
    if max_parts < min_parts:
        raise InvalidArgument(f"max_parts={max_parts} < min_parts={min_parts}")
    text = st.text(min_size=1, max_size=max_string_size)
    part_kinds: list[st.SearchStrategy[Any]] = [text, st.integers(-(2**31), 2**31)]
    if allow_mappings:
        scalar = st.one_of(st.none(), st.booleans(), st.integers(-1000, 1000), text)
        part_kinds.append(st.dictionaries(text, scalar, max_size=3))
    rest = st.lists(st.one_of(*part_kinds), min_size=min_parts - 1, max_size=max_parts - 1)
    return st.tuples(text, rest).map(lambda t: (t[0], *t[1]))


# -- edit operations ------------------------------------------------------------------------


def edit_ops(
    *,
    doc_ids: Sequence[str] = ("doc",),
    keys: Sequence[str] = ("a", "b", "c"),
    kinds: Sequence[str] = EDIT_KINDS,
    values: st.SearchStrategy[Any] | None = None,
    max_index: int = 8,
    max_text: int = 4,
    fields: Sequence[str] = ("x", "y"),
) -> st.SearchStrategy[EditOp]:
    """Edit operations on slots ``keys`` of documents ``doc_ids``.

    ``kinds`` picks from :data:`EDIT_KINDS`; ``values`` generates what ``set``, ``set_field``
    and list inserts write (default: small :func:`json_values`); ``fields`` are the entity
    fields ``set_field`` writes.
    """
    docs = _check_names("doc_ids", doc_ids)
    slots = _check_names("keys", keys)
    field_names = _check_names("fields", fields)
    chosen = _check_kinds("kinds", kinds, EDIT_KINDS)
    if not chosen:
        raise InvalidArgument("kinds must name at least one edit kind")
    _check_int("max_index", max_index)
    _check_int("max_text", max_text, minimum=1)
    if values is not None and not isinstance(values, st.SearchStrategy):
        raise InvalidArgument(f"values must be a hypothesis strategy, got {values!r}")
    vals = values if values is not None else json_values(max_depth=2, max_leaves=4)
    doc = st.sampled_from(docs)
    key = st.sampled_from(slots)
    idx = st.integers(0, max_index)
    text = st.text(min_size=1, max_size=max_text)
    builders: dict[str, st.SearchStrategy[Any]] = {
        "set": st.builds(SetValue, doc, key, vals),
        "set_field": st.builds(SetField, doc, key, st.sampled_from(field_names), vals),
        "delete": st.builds(DeleteKey, doc, key),
        "list_insert": st.builds(ListInsert, doc, key, idx, vals),
        "list_remove": st.builds(ListRemove, doc, key, idx),
        "list_move": st.builds(ListMove, doc, key, idx, idx),
        "text_insert": st.builds(TextInsert, doc, key, idx, text),
        "text_delete": st.builds(TextDelete, doc, key, idx, st.integers(1, max_text)),
    }
    return st.one_of(*(builders[k] for k in chosen))


def mutation_scripts(
    *,
    ops: st.SearchStrategy[EditOp] | None = None,
    min_mutations: int = 1,
    max_mutations: int = 5,
    max_ops: int = 3,
    fail_probability: float = 0.5,
) -> st.SearchStrategy[list[Mutation]]:
    """Lists of optimistic mutations (ids ``m0``, ``m1``...), each of 1..``max_ops`` ops;
    about ``fail_probability`` of them are rejected (``fails=True``) and must be rolled back."""
    _check_int("min_mutations", min_mutations)
    _check_int("max_mutations", max_mutations)
    _check_int("max_ops", max_ops, minimum=1)
    if max_mutations < min_mutations:
        raise InvalidArgument(f"max_mutations={max_mutations} < min_mutations={min_mutations}")
    p = _check_prob("fail_probability", fail_probability)
    op_strategy = ops if ops is not None else edit_ops()
    fails = st.floats(0, 1, exclude_max=True).map(lambda x: x < p) if 0 < p < 1 else st.just(p >= 1)
    one = st.tuples(st.lists(op_strategy, min_size=1, max_size=max_ops), fails)
    return st.lists(one, min_size=min_mutations, max_size=max_mutations).map(
        lambda items: [Mutation(f"m{i}", tuple(o), f) for i, (o, f) in enumerate(items)]
    )


# -- schedules ------------------------------------------------------------------------------


def schedules(
    *,
    peers: int | Sequence[str] = 3,
    ops: st.SearchStrategy[EditOp] | None = None,
    min_steps: int = 1,
    max_steps: int = 30,
    faults: Sequence[str] = FAULT_KINDS,
    mutations: bool = True,
    persist_delays: Sequence[float] = (0.0, 0.01),
    mutation_layer: str = "model",
    fail_probability: float = 0.5,
) -> st.SearchStrategy[Schedule]:
    """Schedules for ``peers`` peers (a count, names ``p0``..., or names).

    ``faults`` picks from :data:`FAULT_KINDS` (``drop``, ``duplicate``, ``reorder``,
    ``delay``, ``corrupt``, ``truncate``: faults on frames; ``partition``: links cut and
    healed; ``crash``: a peer stops, losing what it had not persisted, and restarts from its
    store). An empty ``faults`` gives
    a reliable network. ``persist_delays`` are the write-behind delays to choose from.

    ``mutation_layer`` says how optimistic mutations run: ``"model"`` (data applied with
    :func:`~crdtsync.testing.ops.apply_mutation`, a failure undone by an inverse write) or
    ``"client"`` (through each peer's real QueryClient: :class:`ClientMutate` /
    :class:`ClientSettle` steps, rolled back by the mutation layer). About
    ``fail_probability`` of the mutations are rejected by the simulated server.
    """
    if isinstance(peers, bool):
        raise InvalidArgument("peers must be an int >= 1 or a sequence of names")
    names = tuple(f"p{i}" for i in range(_check_int("peers", peers, minimum=1))) if isinstance(
        peers, int
    ) else _check_names("peers", peers)
    _check_int("min_steps", min_steps)
    _check_int("max_steps", max_steps, minimum=1)
    if max_steps < min_steps:
        raise InvalidArgument(f"max_steps={max_steps} < min_steps={min_steps}")
    kinds = set(_check_kinds("faults", faults, FAULT_KINDS))
    if not isinstance(mutations, bool):
        raise InvalidArgument(f"mutations must be bool, got {mutations!r}")
    if mutation_layer not in MUTATION_LAYERS:
        raise InvalidArgument(f"mutation_layer must be one of {MUTATION_LAYERS!r}, got {mutation_layer!r}")
    fail_p = _check_prob("fail_probability", fail_probability)
    client = mutation_layer == "client"
    delays = tuple(persist_delays)
    if not delays or not all(isinstance(d, (int, float)) and d >= 0 for d in delays):
        raise InvalidArgument(f"persist_delays must be non-empty numbers >= 0, got {persist_delays!r}")
    op_strategy = ops if ops is not None else edit_ops()
    peer = st.sampled_from(names)

    link_faults = st.builds(
        LinkFaults,
        drop=st.sampled_from((0.0, 0.1, 0.3)) if "drop" in kinds else st.just(0.0),
        duplicate=st.sampled_from((0.0, 0.2)) if "duplicate" in kinds else st.just(0.0),
        reorder=st.sampled_from((0.0, 0.3, 0.7)) if "reorder" in kinds else st.just(0.0),
        min_delay=st.just(0.001),
        max_delay=st.sampled_from((0.001, 0.02)) if "delay" in kinds else st.just(0.001),
        corrupt=st.sampled_from((0.0, 0.05, 0.2)) if "corrupt" in kinds else st.just(0.0),
        truncate=st.sampled_from((0.0, 0.05, 0.2)) if "truncate" in kinds else st.just(0.0),
    )
    choices: list[st.SearchStrategy[Any]] = [
        st.tuples(st.just("edit"), peer, op_strategy),
        st.tuples(st.just("edit"), peer, op_strategy),
        st.tuples(st.just("advance"), st.sampled_from((0.001, 0.005, 0.02, 0.1))),
    ]
    if mutations:
        choices.append(
            st.tuples(
                st.just("mutate"),
                peer,
                st.lists(op_strategy, min_size=1, max_size=3),
                st.floats(0, 1, exclude_max=True).map(lambda x: x < fail_p),
            )
        )
        choices.append(st.tuples(st.just("settle"), peer))
    if kinds & {"drop", "duplicate", "reorder", "delay", "corrupt", "truncate"}:
        choices.append(st.tuples(st.just("faults"), link_faults))
    if "partition" in kinds and len(names) > 1:
        pair = st.lists(peer, min_size=2, max_size=2, unique=True)
        choices.append(st.tuples(st.just("partition"), pair))
        choices.append(st.tuples(st.just("heal"), pair))
    if "crash" in kinds:
        choices.append(st.tuples(st.just("crash"), peer))
        choices.append(st.tuples(st.just("restart"), peer))

    @st.composite
    def build(draw: st.DrawFn) -> Schedule:
        raw = draw(st.lists(st.one_of(*choices), min_size=min_steps, max_size=max_steps))
        steps: list[Step] = []
        pending: dict[str, list[str]] = {}
        for n, item in enumerate(raw):
            kind = item[0]
            if kind == "edit":
                steps.append(Edit(item[1], item[2]))
            elif kind == "advance":
                steps.append(Advance(item[1]))
            elif kind == "mutate":
                mid = f"m{n}"
                mutation = Mutation(mid, tuple(item[2]), item[3])
                steps.append(ClientMutate(item[1], mutation) if client else Mutate(item[1], mutation))
                pending.setdefault(item[1], []).append(mid)
            elif kind == "settle":
                queue = pending.get(item[1])
                if queue:
                    mid = queue.pop(0)
                    steps.append(ClientSettle(item[1], mid) if client else Settle(item[1], mid))
            elif kind == "faults":
                steps.append(SetFaults(item[1]))
            elif kind == "partition":
                steps.append(Partition(item[1][0], item[1][1]))
            elif kind == "heal":
                steps.append(Heal(item[1][0], item[1][1]))
            elif kind == "crash":
                steps.append(Crash(item[1]))
            elif kind == "restart":
                steps.append(Restart(item[1]))
        for p, queue in pending.items():  # every mutation gets its answer before the end
            steps.extend(ClientSettle(p, mid) if client else Settle(p, mid) for mid in queue)
        seed = draw(st.integers(0, 2**32 - 1))
        delay = draw(st.sampled_from(delays))
        return Schedule(names, seed, float(delay), tuple(steps))

    return build()
