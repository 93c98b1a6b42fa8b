"""Normalized entities (issue 6): fan-out of one entity update, 100,000-entity datasets,
partitions and notification coalescing, each against a plain (non-normalized) cache.

Parts (keys of the printed JSON object):

- ``fanout`` (a): one entity referenced by R queries (R = 10 and 1,000; each query a small
  normalized list ``[shared, own]`` with a subscribed observer), alone and with 10,000
  unrelated observed queries in the cache. Per update of the shared entity (a local
  ``entities.update`` and a peer's binary update): wall and CPU µs, and notifications
  (referencing observers and unrelated ones). The same queries holding copies
  (non-normalized, updated TanStack-style with ``set_queries_data``) as the baseline.
- ``variants`` and ``vs_baselines`` (b-f): N = 100,000 entities of 6 fields, each variant in a
  fresh interpreter: a list query with ``normalize=[EntityType(..., granularity=G)]`` for
  G in fields / plain / deep, bare pycrdt (a Map of plain dict values in one transaction, and
  one CRDT Map per entity: the layout of "fields"),
  a plain cache holding the list as one query value, and a plain cache with one query per
  entity. For each: load time (wall and CPU), RSS per entity (and the entity documents alone,
  loaded into a fresh replica), encoded bytes, one-field update latency (with the N-entity
  list query cached and observed, and with only a detail query), ``select`` over the list,
  a 50-item window from the middle vs building the whole list; ratios against bare pycrdt
  and the plain caches.
- ``partition`` (g): partition ``"type"`` vs ``"entity"`` vs 16 shards (granularity fields):
  documents, encoded bytes, load time, RSS per entity, and the documents (and bytes) a peer
  must sync to serve a query that references 100 of the N entities.
- ``coalescing``: 1,000 remote updates to one entity observed by a list and a detail query,
  one every 1 ms of (fake) time: notifications per observer without ``notify_tick``, with a
  50 ms tick, with observer ``throttle`` and ``debounce`` of 50 ms; and all 1,000 in one burst.

``--quick`` (a smoke run, same fields): 2,000 entities, 100 instead of 1,000 referencing
queries, 1,000 unrelated ones, 200 coalesced updates.

Run: ``.venv/bin/python benchmarks/normalized_bench.py [--quick] [--indent 1] [--jobs 2]``.
Internal: ``--variant NAME --n N`` runs one large-dataset variant and prints its JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import Samples, Stopwatch, emit, machine_info, ratio, rss_bytes, run_json_subprocess

from crdtsync import FakeClock, QueryClient, Replica
from crdtsync.normalize import EntityType
from crdtsync.normalize.entity import Granularity
from crdtsync.origins import remote_origin

LIST_KEY = ("todos", "all")


def entity(i: int, v: int = 1) -> dict[str, Any]:
    return {"id": i, "title": f"todo number {i}", "done": i % 3 == 0, "score": i + 0.5,
            "tags": ["red", "blue"], "v": v}


def returning(value: Any) -> Any:
    async def fn(ctx: Any) -> Any:
        return value

    return fn


class Counter:
    def __init__(self) -> None:
        self.n = 0

    def __call__(self, result: Any) -> None:
        self.n += 1


class CpuSamples:
    """Wall and CPU time of each sample; summaries in µs."""

    def __init__(self) -> None:
        self.wall = Samples()
        self.cpu = Samples()

    def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        c0, t0 = time.process_time(), time.perf_counter()
        out = fn(*args, **kwargs)
        self.wall.add(time.perf_counter() - t0)
        self.cpu.add(time.process_time() - c0)
        return out

    def summary(self) -> dict[str, Any]:
        return {"wall_us": self.wall.summary(), "cpu_us": self.cpu.summary()}


def check(cond: bool, what: str) -> None:
    if not cond:
        raise AssertionError(what)


# -- (a) fan-out ----------------------------------------------------------------------------


async def fanout_case(n_refs: int, n_unrelated: int, samples: int) -> dict[str, Any]:
    """One entity referenced by ``n_refs`` observed queries, plus ``n_unrelated`` observed
    queries that reference other entities."""
    todo = EntityType("todo", version="v")
    client = QueryClient(clock=FakeClock())
    ref_counters = [Counter() for _ in range(n_refs)]
    other_counters = [Counter() for _ in range(n_unrelated)]
    stops = []
    with client.batch():
        for k, c in enumerate(ref_counters):
            key = ("ref", k)
            obs = client.observe(key, normalize=[todo], enabled=False)
            stops.append(obs.subscribe(c))
            client.set_query_data(key, [entity(0), entity(1 + k)])
        for j, c in enumerate(other_counters):
            key = ("other", j)
            obs = client.observe(key, normalize=todo, enabled=False)
            stops.append(obs.subscribe(c))
            client.set_query_data(key, entity(1_000_000 + j))
    check(client.get_query_data(("ref", 0))[0]["id"] == 0, "fanout: reference not stored")
    for c in ref_counters + other_counters:
        c.n = 0

    local = CpuSamples()
    for s in range(samples):
        local.run(client.entities.update, todo, 0, {"title": f"local {s}"})
    ref_notes = sum(c.n for c in ref_counters)
    other_notes = sum(c.n for c in other_counters)
    check(ref_notes == samples * n_refs, f"fanout: {ref_notes} notifications for {samples}x{n_refs}")
    check(other_notes == 0, "fanout: unrelated observers notified")
    check(client.get_query_data(("ref", n_refs - 1))[0]["title"] == f"local {samples - 1}", "fanout: stale read")

    # A peer's update to the same entity (binary Yjs update applied to the replica).
    doc = todo.doc_id("0")
    peer = Replica()
    peer.apply_update(doc, client.replica.get_update(doc))
    for c in ref_counters:
        c.n = 0
    remote = CpuSamples()
    origin = remote_origin("peer")
    for s in range(samples):
        sv = client.replica.state_vector(doc)
        peer.write_path(doc, ("0",), {**entity(0), "title": f"remote {s}"}, depth=1)
        update = peer.get_update(doc, sv)
        remote.run(client.replica.apply_update, doc, update, origin=origin)
    remote_notes = sum(c.n for c in ref_counters)
    check(remote_notes == samples * n_refs, "fanout: remote update did not reach every referencing observer")
    check(sum(c.n for c in other_counters) == 0, "fanout: unrelated observers notified by a remote update")
    for stop in stops:
        stop()

    # Baseline: the same queries holding copies; an update rewrites every copy.
    plain = QueryClient(clock=FakeClock())
    p_counters = [Counter() for _ in range(n_refs)]
    p_stops = []
    with plain.batch():
        for k, c in enumerate(p_counters):
            key = ("ref", k)
            p_stops.append(plain.observe(key, enabled=False).subscribe(c))
            plain.set_query_data(key, [entity(0), entity(1 + k)])
        for j in range(n_unrelated):
            key = ("other", j)
            p_stops.append(plain.observe(key, enabled=False).subscribe(Counter()))
            plain.set_query_data(key, entity(1_000_000 + j))
    for c in p_counters:
        c.n = 0
    base = CpuSamples()

    def set_everywhere(title: str) -> None:
        def upd(cur: Any) -> Any:
            return [dict(x, title=title) if x["id"] == 0 else x for x in cur]

        plain.set_queries_data(("ref",), upd)

    base_samples = max(3, samples // 5)
    for s in range(base_samples):
        base.run(set_everywhere, f"plain {s}")
    check(sum(c.n for c in p_counters) == base_samples * n_refs, "fanout baseline: notifications")
    for stop in p_stops:
        stop()

    per_note = local.cpu.summary()["p50"] / n_refs
    return {
        "refs": n_refs, "unrelated": n_unrelated, "samples": samples,
        "local_update": local.summary(), "remote_update": remote.summary(),
        "notifications_per_update": ref_notes / samples,
        "unrelated_notifications": other_notes,
        "cpu_us_per_notification_p50": per_note,
        "plain_copies_set_queries_data": base.summary(),
    }


async def fanout(quick: bool) -> dict[str, Any]:
    unrelated = 1_000 if quick else 10_000
    many = 100 if quick else 1_000
    cases = {}
    for refs, unrel, samples in ((10, 0, 50 if quick else 300), (10, unrelated, 50 if quick else 300),
                                 (many, 0, 10), (many, unrelated, 10)):
        cases[f"refs{refs}_unrelated{unrel}"] = await fanout_case(refs, unrel, samples)
    small, big = cases["refs10_unrelated0"], cases[f"refs{many}_unrelated0"]
    small_u, big_u = cases[f"refs10_unrelated{unrelated}"], cases[f"refs{many}_unrelated{unrelated}"]

    def p50(c: dict[str, Any], what: str = "local_update") -> float:
        return float(c[what]["cpu_us"]["p50"])

    return {
        "cases": cases,
        "refs_many": many, "unrelated": unrelated,
        "ratio_refs_many_vs_refs10_cpu_p50": ratio(p50(big), p50(small)),
        "ratio_with_vs_without_unrelated_refs10_cpu_p50": ratio(p50(small_u), p50(small)),
        "ratio_with_vs_without_unrelated_refs_many_cpu_p50": ratio(p50(big_u), p50(big)),
        "ratio_plain_copies_vs_normalized_refs_many_unrelated_cpu_p50": ratio(
            p50(big_u, "plain_copies_set_queries_data"), p50(big_u)),
    }


# -- (b)-(g) large datasets, one variant per interpreter --------------------------------------


def docs_bytes(replica: Replica, doc_ids: list[str]) -> int:
    return sum(len(replica.get_update(d)) for d in doc_ids)


def count_done(todos: Any) -> int:
    return sum(1 for t in todos if t["done"])


async def large_normalized(n: int, granularity: Granularity, partition: Any, update_samples: int,
                           detail_samples: int) -> dict[str, Any]:
    todo = EntityType("todo", version="v", granularity=granularity, partition=partition)
    data = [entity(i) for i in range(n)]
    fn = returning(data)
    client = QueryClient(clock=FakeClock())
    rss0 = rss_bytes()
    with Stopwatch() as load:
        await client.fetch_query(LIST_KEY, fn, normalize=[todo])
    rss1 = rss_bytes()
    # Memory once the list is observed and one entity patched into it (what lazily built state
    # costs, if any), measured before anything below allocates (the peer replica, encodings).
    first_counter = Counter()
    first_stop = client.observe(LIST_KEY, normalize=[todo], enabled=False).subscribe(first_counter)
    client.entities.update(todo, n // 4, {"title": "first patch"})
    check(first_counter.n == 1, "first patch: one notification")
    first_stop()
    rss_after_update = rss_bytes()
    doc_ids = client.replica.doc_ids()
    entity_docs = [d for d in doc_ids if d.startswith("entity:")]
    # The documents alone: the same entity documents loaded into a fresh replica (what a peer
    # that syncs them but runs no query holds); the rest of rss_per_entity is Python-side.
    updates = [(d, client.replica.get_update(d)) for d in entity_docs]
    peer = Replica()
    rss2 = rss_bytes()
    with Stopwatch() as peer_load:
        for d, u in updates:
            peer.apply_update(d, u)
    rss3 = rss_bytes()
    del updates
    out: dict[str, Any] = {
        "n": n, "granularity": granularity, "partition": str(partition),
        "load_s": load.wall, "load_cpu_s": load.cpu,
        "rss_per_entity_bytes": (rss1 - rss0) / n,
        "rss_per_entity_after_first_update_bytes": (rss_after_update - rss0) / n,
        "rss_per_entity_docs_only_bytes": (rss3 - rss2) / n,
        "peer_load_docs_cpu_s": peer_load.cpu,
        "documents": len(doc_ids),
        "encoded_bytes": docs_bytes(client.replica, doc_ids),
    }
    # How many documents (and bytes) a peer syncs to serve a query over 100 of the n entities.
    rng = random.Random(6)
    hundred = rng.sample(range(n), 100)
    needed = {todo.doc_id(str(i)) for i in hundred}
    out["query_of_100_docs_to_sync"] = len(needed) + 1  # + the query's own document
    out["query_of_100_bytes_to_sync"] = docs_bytes(client.replica, sorted(needed))
    peer.close()
    del peer

    with Stopwatch() as enc:
        for d in entity_docs:
            client.replica.get_update(d)
    out["encode_entity_docs_cpu_s"] = enc.cpu
    list_counter = Counter()
    stops = [client.observe(LIST_KEY, normalize=[todo], enabled=False).subscribe(list_counter)]
    # One-field updates while only the list observer (no select) is mounted: the patch path.
    plain_upd = CpuSamples()
    for s in range(update_samples):
        plain_upd.run(client.entities.update, todo, (n // 3 + 11 * s) % n, {"title": f"patched {s}"})
    check(list_counter.n == update_samples, f"list observer: {list_counter.n} notifications")
    out["update_with_list_observed_no_select"] = plain_upd.summary()
    list_counter.n = 0
    sel_counter = Counter()
    with Stopwatch() as sel:  # a new observer selects over the cached (denormalized) list
        sel_obs = client.observe(LIST_KEY, normalize=[todo], enabled=False, select=count_done)
        stops.append(sel_obs.subscribe(sel_counter))
        done = sel_obs.get_current_result().data
    check(done == count_done(data), f"select: {done} != {count_done(data)}")
    out["select_count_done_s"] = sel.wall
    out["select_count_done_cpu_s"] = sel.cpu

    mid = n // 2
    query = client.query_cache.find(LIST_KEY)
    assert query is not None
    with Stopwatch() as win_warm:
        window = client.entities.read_window(LIST_KEY, mid, mid + 50, todo)
    check([t["id"] for t in window] == list(range(mid, mid + 50)), "read_window: wrong items")
    with Stopwatch() as whole_warm:
        whole = query.read_data()
    check(len(whole) == n, "read_data: wrong length")

    # One-field update to one entity while the n-entity list query is cached and observed.
    upd = CpuSamples()
    for s in range(update_samples):
        idx = (mid + 7 * s) % n
        upd.run(client.entities.update, todo, idx, {"title": f"changed {s}"})
    check(list_counter.n == update_samples, f"list observer: {list_counter.n} notifications")
    check(client.get_query_data(LIST_KEY)[mid]["title"] == "changed 0", "list does not show the update")
    out["update_with_list_observed"] = upd.summary()
    out["update_with_list_observed_notifications"] = list_counter.n
    out["select_after_update_notifications"] = sel_counter.n

    # Right after an update: the entity read cache of the changed document is cold.
    client.entities.update(todo, mid + 1, {"title": "cold"})
    with Stopwatch() as win_cold:
        client.entities.read_window(LIST_KEY, mid, mid + 50, todo)
    client.entities.update(todo, mid + 2, {"title": "cold"})
    with Stopwatch() as whole_cold:
        query.read_data()
    out["window50"] = {"warm_cpu_s": win_warm.cpu, "cold_cpu_s": win_cold.cpu,
                       "warm_s": win_warm.wall, "cold_s": win_cold.wall}
    out["whole_list_read"] = {"warm_cpu_s": whole_warm.cpu, "cold_cpu_s": whole_cold.cpu,
                              "warm_s": whole_warm.wall, "cold_s": whole_cold.wall}
    out["ratio_whole_vs_window_cold_cpu"] = ratio(whole_cold.cpu, win_cold.cpu)

    # The list query leaves the cache; one detail query observes one entity.
    for stop in stops:
        stop()
    client.remove_queries(LIST_KEY)
    d_idx = n // 3
    d_key = ("todo", d_idx)
    current = client.entities.get(todo, d_idx)
    await client.fetch_query(d_key, returning(current), normalize=todo)
    d_counter = Counter()
    d_stop = client.observe(d_key, normalize=todo, enabled=False).subscribe(d_counter)
    det = CpuSamples()
    for s in range(detail_samples):
        det.run(client.entities.update, todo, d_idx, {"title": f"detail {s}"})
    check(d_counter.n == detail_samples, "detail observer notifications")
    d_stop()
    out["update_detail_only"] = det.summary()
    return out


def bare_load(n: int, wrap: Callable[[dict[str, Any]], Any] | None,
              ) -> tuple[Any, Any, list[Any], Stopwatch, dict[str, Any]]:
    """n entities put into one bare pycrdt Map in one transaction, each as it is (``wrap``
    None: no call per entity in the timed loop) or as ``wrap(entity)``: the document, the map,
    the data, the load stopwatch and the common result fields."""
    import pycrdt

    data = [entity(i) for i in range(n)]
    doc: pycrdt.Doc[Any] = pycrdt.Doc()
    m = doc.get("m", type=pycrdt.Map)
    rss0 = rss_bytes()
    with Stopwatch() as load, doc.transaction():
        if wrap is None:
            for e in data:
                m[str(e["id"])] = e
        else:
            for e in data:
                m[str(e["id"])] = wrap(e)
    rss1 = rss_bytes()
    fields = {"n": n, "load_s": load.wall, "load_cpu_s": load.cpu, "rss_per_entity_bytes": (rss1 - rss0) / n,
              "encoded_bytes": len(doc.get_update())}
    return doc, m, data, load, fields


async def large_bare(n: int, detail_samples: int) -> dict[str, Any]:
    _doc, m, data, _load, fields = bare_load(n, None)
    with Stopwatch() as sel:
        done = count_done(m.to_py().values())
    check(done == count_done(data), "bare select")
    mid = n // 2
    with Stopwatch() as win:
        window = [m[str(i)] for i in range(mid, mid + 50)]
    check(len(window) == 50, "bare window")
    det = CpuSamples()
    key = str(n // 3)
    for s in range(detail_samples):
        det.run(m.__setitem__, key, {**entity(n // 3), "title": f"detail {s}"})
    return {**fields, "select_count_done_cpu_s": sel.cpu, "window50": {"cpu_s": win.cpu}, "update": det.summary()}


async def large_bare_maps(n: int) -> dict[str, Any]:
    """Bare pycrdt with one CRDT Map per entity (the layout of granularity "fields"), built in
    one transaction: the same-layout baseline for that granularity."""
    import pycrdt

    _doc, m, _data, _load, fields = bare_load(n, pycrdt.Map)
    check(len(m) == n, "bare maps: entity count")
    return fields


async def large_plain_value(n: int, update_samples: int) -> dict[str, Any]:
    """The whole list as one (non-normalized) query value, default routing (CRDT all the way)."""
    data = [entity(i) for i in range(n)]
    client = QueryClient(clock=FakeClock())
    rss0 = rss_bytes()
    with Stopwatch() as load:
        await client.fetch_query(LIST_KEY, returning(data))
    rss1 = rss_bytes()
    counter = Counter()
    stops = [client.observe(LIST_KEY, enabled=False).subscribe(counter)]
    with Stopwatch() as sel:
        sel_obs = client.observe(LIST_KEY, enabled=False, select=count_done)
        stops.append(sel_obs.subscribe(Counter()))
        done = sel_obs.get_current_result().data
    check(done == count_done(data), "plain value select")
    mid = n // 2
    with Stopwatch() as whole:
        value = client.replica.read(LIST_KEY)
    with Stopwatch() as win:
        window = value[mid:mid + 50]
    check(len(window) == 50, "plain value window")
    upd = CpuSamples()
    for s in range(update_samples):
        idx = (mid + 7 * s) % n

        def change(cur: Any, idx: int = idx, s: int = s) -> Any:
            return [*cur[:idx], {**cur[idx], "title": f"changed {s}"}, *cur[idx + 1:]]

        upd.run(client.set_query_data, LIST_KEY, change)
    check(counter.n == update_samples, "plain value notifications")
    for stop in stops:
        stop()
    return {
        "n": n, "load_s": load.wall, "load_cpu_s": load.cpu, "rss_per_entity_bytes": (rss1 - rss0) / n,
        "encoded_bytes": docs_bytes(client.replica, client.replica.doc_ids()),
        "select_count_done_cpu_s": sel.cpu, "whole_list_read_cpu_s": whole.cpu,
        "window50_from_whole_cpu_s": win.cpu, "update_with_list_observed": upd.summary(),
    }


async def large_plain_per_entity(n: int, detail_samples: int) -> dict[str, Any]:
    """One (non-normalized) query per entity, seeded with ``set_query_data`` in one batch."""
    data = [entity(i) for i in range(n)]
    client = QueryClient(clock=FakeClock())
    rss0 = rss_bytes()
    with Stopwatch() as load, client.batch():
        for e in data:
            client.set_query_data(("todo", e["id"]), e)
    rss1 = rss_bytes()
    with Stopwatch() as sel:
        done = count_done(v for _, v in client.get_queries_data(("todo",)))
    check(done == count_done(data), "per-entity select")
    d_key = ("todo", n // 3)
    counter = Counter()
    stop = client.observe(d_key, enabled=False).subscribe(counter)
    det = CpuSamples()
    for s in range(detail_samples):
        det.run(client.set_query_data, d_key, {**entity(n // 3), "title": f"detail {s}"})
    check(counter.n == detail_samples, "per-entity notifications")
    stop()
    return {
        "n": n, "queries": len(client.query_cache.get_all()), "load_s": load.wall, "load_cpu_s": load.cpu,
        "rss_per_entity_bytes": (rss1 - rss0) / n,
        "encoded_bytes": docs_bytes(client.replica, client.replica.doc_ids()),
        "select_count_done_cpu_s": sel.cpu, "update": det.summary(),
    }


def run_variant(name: str, n: int, quick: bool) -> dict[str, Any]:
    upd = 3 if quick else 2  # each costs seconds at 100,000 entities (see update_with_list_observed)
    det = 200
    if name == "fanout":
        return {"fanout": asyncio.run(fanout(quick)), "coalescing": asyncio.run(coalescing(200 if quick else 1_000))}
    if name.startswith("norm_"):
        return asyncio.run(large_normalized(n, cast("Granularity", name[5:]), "type", upd, det))
    if name.startswith("part_"):
        p = name[5:]
        partition: Any = int(p) if p.isdigit() else p
        return asyncio.run(large_normalized(n, "fields", partition, upd, det))
    if name == "bare":
        return asyncio.run(large_bare(n, det))
    if name == "bare_maps":
        return asyncio.run(large_bare_maps(n))
    if name == "plain_value":
        return asyncio.run(large_plain_value(n, upd))
    if name == "plain_per_entity":
        return asyncio.run(large_plain_per_entity(n, det))
    raise SystemExit(f"unknown variant {name!r}")


LARGE = ["norm_fields", "norm_plain", "norm_deep", "bare", "bare_maps", "plain_value", "plain_per_entity"]
PARTITIONS = ["part_entity", "part_16"]  # "type" is norm_fields
# Longest first, so the pool's workers finish at about the same time.
JOBS = ["part_entity", "norm_fields", "fanout", "plain_per_entity", "norm_deep", "norm_plain", "plain_value",
        "part_16", "bare", "bare_maps"]


def large(n: int, quick: bool, jobs: int) -> dict[str, Any]:
    def one(name: str) -> tuple[str, Any]:
        args = [__file__, "--variant", name, "--n", str(n)] + (["--quick"] if quick else [])
        return name, run_json_subprocess(args, timeout=900)

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        results = dict(pool.map(one, JOBS))
    bare = results["bare"]
    summary: dict[str, Any] = {}
    for g in ("fields", "plain", "deep"):
        r = results[f"norm_{g}"]
        summary[g] = {
            "load_cpu_vs_bare": ratio(r["load_cpu_s"], bare["load_cpu_s"]),
            "load_cpu_vs_plain_value": ratio(r["load_cpu_s"], results["plain_value"]["load_cpu_s"]),
            "load_cpu_vs_plain_per_entity": ratio(r["load_cpu_s"], results["plain_per_entity"]["load_cpu_s"]),
            "rss_per_entity_vs_bare": ratio(r["rss_per_entity_bytes"], bare["rss_per_entity_bytes"]),
            "update_with_list_observed_cpu_p50_vs_plain_value": ratio(
                r["update_with_list_observed"]["cpu_us"]["p50"],
                results["plain_value"]["update_with_list_observed"]["cpu_us"]["p50"]),
            "update_detail_cpu_p50_vs_plain_per_entity": ratio(
                r["update_detail_only"]["cpu_us"]["p50"], results["plain_per_entity"]["update"]["cpu_us"]["p50"]),
            "update_detail_cpu_p50_vs_bare": ratio(
                r["update_detail_only"]["cpu_us"]["p50"], bare["update"]["cpu_us"]["p50"]),
            "meets_load_within_2x_of_bare": ratio(r["load_cpu_s"], bare["load_cpu_s"]) <= 2.0,
            "meets_rss_at_most_1_5_kb": r["rss_per_entity_bytes"] <= 1536,
        }
        if g == "fields":  # the same layout in bare pycrdt: a CRDT map per entity
            same = results["bare_maps"]
            summary[g]["load_cpu_vs_bare_maps"] = ratio(r["load_cpu_s"], same["load_cpu_s"])
            summary[g]["rss_per_entity_vs_bare_maps"] = ratio(r["rss_per_entity_bytes"], same["rss_per_entity_bytes"])
    keep = ("documents", "encoded_bytes", "load_cpu_s", "load_s", "rss_per_entity_bytes",
            "rss_per_entity_docs_only_bytes", "peer_load_docs_cpu_s", "query_of_100_docs_to_sync",
            "query_of_100_bytes_to_sync", "update_with_list_observed", "update_detail_only")
    partition = {"type": {k: results["norm_fields"][k] for k in keep},
                 "entity": {k: results["part_entity"][k] for k in keep},
                 "16_shards": {k: results["part_16"][k] for k in keep}}
    return {"variants": {k: results[k] for k in LARGE}, "vs_baselines": summary, "partition": partition,
            **results["fanout"]}


# -- coalescing -----------------------------------------------------------------------------


async def coalescing(updates: int) -> dict[str, Any]:
    async def run(*, tick: float | None, throttle: float | None = None, debounce: float | None = None,
                  spread: float = 0.001) -> dict[str, Any]:
        todo = EntityType("todo", version="v")
        clock = FakeClock()
        client = QueryClient(clock=clock, notify_tick=tick)
        await client.fetch_query(("todos", "list"), returning([entity(0), entity(1)]), normalize=[todo])
        await client.fetch_query(("todo", 0), returning(entity(0)), normalize=todo)
        extra: dict[str, Any] = {}
        if throttle:
            extra["throttle"] = throttle
        if debounce:
            extra["debounce"] = debounce
        counters = {"list": Counter(), "detail": Counter()}
        stops = [client.observe(("todos", "list"), normalize=[todo], enabled=False, **extra)
                 .subscribe(counters["list"]),
                 client.observe(("todo", 0), normalize=todo, enabled=False, **extra).subscribe(counters["detail"])]
        doc = todo.doc_id("0")
        peer = Replica()
        peer.apply_update(doc, client.replica.get_update(doc))
        origin = remote_origin("peer")
        pending = []
        for s in range(updates):
            sv = peer.state_vector(doc)
            peer.write_path(doc, ("0",), {**entity(0), "title": f"remote {s}"}, depth=1)
            pending.append(peer.get_update(doc, sv))
        c0 = time.process_time()
        for u in pending:
            client.replica.apply_update(doc, u, origin=origin)
            if spread:
                await clock.advance(spread)
        await clock.advance(1.0)  # let every tick, throttle and debounce timer fire
        cpu = time.process_time() - c0
        last = client.get_query_data(("todo", 0))["title"]
        check(last == f"remote {updates - 1}", "coalescing: final value not seen")
        for stop in stops:
            stop()
        return {"notifications_per_observer": {k: c.n for k, c in counters.items()},
                "cpu_us_per_update": cpu / updates * 1e6}

    return {
        "updates": updates, "spacing_s": 0.001,
        "no_tick": await run(tick=None),
        "notify_tick_50ms": await run(tick=0.05),
        "throttle_50ms": await run(tick=None, throttle=0.05),
        "debounce_50ms": await run(tick=None, debounce=0.05),
        "burst_no_tick": await run(tick=None, spread=0.0),
        "burst_notify_tick_50ms": await run(tick=0.05, spread=0.0),
    }


# -- main -----------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--quick", action="store_true", help="smaller sizes (CI smoke run, < 20 s)")
    ap.add_argument("--indent", type=int, default=None)
    ap.add_argument("--jobs", type=int, default=2, help="large-dataset variants run in parallel")
    ap.add_argument("--variant", help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.variant:
        emit(run_variant(args.variant, args.n, args.quick))
        return
    n = 2_000 if args.quick else 100_000
    t0 = time.perf_counter()
    result: dict[str, Any] = {"quick": args.quick, "n": n}
    large_result = large(n, args.quick, args.jobs)
    result.update(large_result)
    result["total_s"] = time.perf_counter() - t0
    result["machine"] = machine_info()
    emit(result, indent=args.indent)


if __name__ == "__main__":
    main()
