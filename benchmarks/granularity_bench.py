"""Entity granularity: how deep should an entity's data be made of CRDT types?

Three variants store the same N entities (100,000; ``--quick``: 10,000) of 5 fields
(``id``, ``title``, ``done``, ``score``, ``tags``: a list of two strings) in one document, one
root-map slot per entity, written through :class:`crdtsync.Replica` with a CRDT ``depth``:

- ``nested`` (depth None): the entity is a CRDT Map and ``tags`` a CRDT Array;
- ``depth1`` (depth 1): the entity is a CRDT Map, its field values are plain (``tags`` is a
  plain list, replaced as a whole);
- ``plain`` (depth 0): the whole entity is one plain value (last writer wins per entity).

For each variant, measured in a fresh interpreter (so RSS is honest; times are given as wall
and as process CPU time, the figure to trust on a shared machine): encoded bytes, RSS per
entity after building and after loading the encoded document into a fresh replica (a peer
that syncs), build time (all entities in one batch), load time, full read time (the whole
document at once, and per-entity reads as the query layer does them), and the update bytes
of a one-field change and of one added tag. A plain Python dict of the same entities is
measured too, as a baseline, and each variant's build and ``to_py()`` read on a bare,
unobserved pycrdt Doc (``bare_pycrdt_*``: what the Replica's diff-writes and observers add).

Merge precision (in this process, small documents): two replicas edit the same entity
concurrently, then exchange updates. Different fields: are both edits kept? The same field:
which one wins (and do both replicas agree)? Two tags appended concurrently: both kept?

Prints one JSON object. Run: ``.venv/bin/python benchmarks/granularity_bench.py [--quick]``
(internal: ``--variant NAME --n N --phase build|load`` runs one measurement and prints its JSON).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import Stopwatch, emit, machine_info, rss_bytes, run_json_subprocess
from pycrdt import Array, Doc, Map

from crdtsync import Replica
from crdtsync.origins import remote_origin

DOC = "ents"
VARIANTS: dict[str, int | None] = {"nested": None, "depth1": 1, "plain": 0}
READ_SAMPLE = 10_000


def entity(i: int) -> dict[str, Any]:
    return {"id": i, "title": f"entity number {i}", "done": i % 3 == 0, "score": i + 0.5, "tags": ["red", "blue"]}


# -- one variant, in its own interpreter ------------------------------------------------------


def measure_build(variant: str, n: int, out_path: str | None) -> dict[str, Any]:
    depth = VARIANTS.get(variant)
    if variant == "dict":
        rss0 = rss_bytes()
        with Stopwatch() as build:
            data = {str(i): entity(i) for i in range(n)}
        rss1 = rss_bytes()
        with Stopwatch() as read:
            copy = json.loads(json.dumps(data))
        if copy != data:
            raise AssertionError("dict baseline: JSON round trip differs")
        return {"variant": variant, "n": n, "rss_per_entity_built": (rss1 - rss0) / n, "build_s": build.wall,
                "build_cpu_s": build.cpu, "full_read_json_roundtrip_s": read.wall,
                "full_read_json_roundtrip_cpu_s": read.cpu, "encoded_json_bytes": len(json.dumps(data))}

    replica = Replica(client_id=1)
    replica.doc(DOC)
    rss0 = rss_bytes()
    with Stopwatch() as build, replica.batch():
        for i in range(n):
            replica.write_path(DOC, (str(i),), entity(i), depth=depth)
    rss1 = rss_bytes()
    update = replica.get_update(DOC)
    if out_path is not None:
        Path(out_path).write_bytes(update)

    with Stopwatch() as read_all:
        whole = replica.read_path(DOC, ())
    if len(whole) != n or whole["7"] != entity(7):
        raise AssertionError(f"{variant}: read back {whole.get('7')!r}, want {entity(7)!r}")
    del whole
    rng = random.Random(1)
    sample = [rng.randrange(n) for _ in range(min(READ_SAMPLE, n))]
    with Stopwatch() as read_each:
        for i in sample:
            replica.read_path(DOC, (str(i),))

    bare = _bare_pycrdt(depth, n)

    updates: list[bytes] = []
    replica.on_update(lambda _d, upd, _o: updates.append(upd))
    ent = entity(5)
    replica.write_path(DOC, ("5",), {**ent, "done": not ent["done"]}, depth=depth)
    replica.write_path(DOC, ("6",), {**entity(6), "tags": [*entity(6)["tags"], "green"]}, depth=depth)
    if len(updates) != 2:
        raise AssertionError(f"{variant}: {len(updates)} updates for two edits")
    return {
        "variant": variant,
        "depth": depth,
        "n": n,
        "encoded_bytes": len(update),
        "encoded_bytes_per_entity": len(update) / n,
        "rss_per_entity_built": (rss1 - rss0) / n,
        "build_s": build.wall,
        "build_cpu_s": build.cpu,
        "full_read_s": read_all.wall,
        "full_read_cpu_s": read_all.cpu,
        "read_one_entity_us": read_each.wall / len(sample) * 1e6,
        "read_one_entity_cpu_us": read_each.cpu / len(sample) * 1e6,
        **bare,
        "one_field_update_bytes": len(updates[0]),
        "add_one_tag_update_bytes": len(updates[1]),
    }


def _bare_pycrdt(depth: int | None, n: int) -> dict[str, Any]:
    """The same build and full read on a bare, unobserved pycrdt Doc: what the Replica adds."""
    doc: Doc[Any] = Doc(client_id=3)
    root = doc.get("root", type=Map)
    with Stopwatch() as build, doc.transaction():
        for i in range(n):
            ent = entity(i)
            if depth == 0:
                root[str(i)] = ent
            elif depth == 1:
                root[str(i)] = Map(ent)
            else:
                root[str(i)] = Map({**ent, "tags": Array(ent["tags"])})
    with Stopwatch() as read:
        root.to_py()
    return {"bare_pycrdt_build_cpu_s": build.cpu, "bare_pycrdt_to_py_cpu_s": read.cpu}


def measure_load(variant: str, n: int, in_path: str) -> dict[str, Any]:
    update = Path(in_path).read_bytes()
    replica = Replica(client_id=2)
    replica.doc(DOC)
    rss0 = rss_bytes()
    with Stopwatch() as load:
        replica.apply_update(DOC, update, origin=remote_origin("loader"))
    del update
    rss1 = rss_bytes()
    if replica.read_path(DOC, ("7",)) != entity(7):
        raise AssertionError(f"{variant}: loaded entity 7 differs")
    return {"variant": variant, "n": n, "load_s": load.wall, "load_cpu_s": load.cpu,
            "rss_per_entity_loaded": (rss1 - rss0) / n}


def run_variants(n: int) -> dict[str, Any]:
    script = str(Path(__file__).resolve())
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for variant in VARIANTS:
            path = os.path.join(tmp, f"{variant}.bin")
            built = run_json_subprocess([script, "--variant", variant, "--n", str(n), "--phase", "build",
                                         "--out", path])
            loaded = run_json_subprocess([script, "--variant", variant, "--n", str(n), "--phase", "load",
                                          "--out", path])
            out[variant] = {**built, **loaded}
    out["dict"] = run_json_subprocess([script, "--variant", "dict", "--n", str(n), "--phase", "build"])
    return out


# -- merge precision ------------------------------------------------------------------------


def _sync(a: Replica, b: Replica) -> None:
    ua = a.get_update(DOC, b.state_vector(DOC))
    ub = b.get_update(DOC, a.state_vector(DOC))
    b.apply_update(DOC, ua)
    a.apply_update(DOC, ub)


def _concurrent(depth: int | None, edit_a: dict[str, Any], edit_b: dict[str, Any],
                ids: tuple[int, int] = (1, 2)) -> tuple[dict[str, Any], dict[str, Any]]:
    """Both replicas start from entity(0), apply their edit concurrently, then sync."""
    a, b = Replica(client_id=ids[0]), Replica(client_id=ids[1])
    a.write_path(DOC, ("0",), entity(0), depth=depth)
    _sync(a, b)
    a.write_path(DOC, ("0",), {**entity(0), **edit_a}, depth=depth)
    b.write_path(DOC, ("0",), {**entity(0), **edit_b}, depth=depth)
    _sync(a, b)
    return a.read_path(DOC, ("0",)), b.read_path(DOC, ("0",))


def merge_precision() -> dict[str, Any]:
    out: dict[str, Any] = {}
    base_tags = entity(0)["tags"]
    for variant, depth in VARIANTS.items():
        ra, rb = _concurrent(depth, {"title": "by A"}, {"done": not entity(0)["done"]})
        different = {"converged": ra == rb, "both_kept": ra["title"] == "by A" and ra["done"] != entity(0)["done"],
                     "result": ra}
        same: dict[str, Any] = {}
        for ids in ((1, 2), (2, 1)):
            ra, rb = _concurrent(depth, {"title": "by A"}, {"title": "by B"}, ids)
            winner = {"by A": ids[0], "by B": ids[1]}.get(ra["title"])
            same[f"A={ids[0]},B={ids[1]}"] = {"converged": ra == rb, "winner_client_id": winner,
                                              "title": ra["title"]}
        ra, rb = _concurrent(depth, {"tags": [*base_tags, "from A"]}, {"tags": [*base_tags, "from B"]})
        tags = {"converged": ra == rb, "both_kept": "from A" in ra["tags"] and "from B" in ra["tags"],
                "result": ra["tags"]}
        out[variant] = {"different_fields": different, "same_field": same, "concurrent_tag_appends": tags}
    return out


# -- main -----------------------------------------------------------------------------------


def main(quick: bool) -> dict[str, Any]:
    n = 10_000 if quick else 100_000
    t0 = time.perf_counter()
    variants = run_variants(n)
    merge = merge_precision()
    ratios = {
        v: {
            "encoded_bytes_vs_plain": variants[v]["encoded_bytes"] / variants["plain"]["encoded_bytes"],
            "rss_built_vs_plain": variants[v]["rss_per_entity_built"] / variants["plain"]["rss_per_entity_built"],
            "build_cpu_vs_plain": variants[v]["build_cpu_s"] / variants["plain"]["build_cpu_s"],
            "full_read_cpu_vs_plain": variants[v]["full_read_cpu_s"] / variants["plain"]["full_read_cpu_s"],
            "read_one_entity_cpu_vs_plain": variants[v]["read_one_entity_cpu_us"]
            / variants["plain"]["read_one_entity_cpu_us"],
        }
        for v in VARIANTS
    }
    return {
        "benchmark": "granularity_bench",
        "quick": quick,
        "machine": machine_info(),
        "entities": n,
        "entity_example": entity(0),
        "variants": variants,
        "ratios": ratios,
        "merge_precision": merge,
        "elapsed_s": time.perf_counter() - t0,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10,000 entities instead of 100,000")
    parser.add_argument("--indent", type=int, default=None, help="pretty-print the JSON")
    parser.add_argument("--variant", choices=[*VARIANTS, "dict"], help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--phase", choices=["build", "load"], help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant is not None:
        gc.collect()
        if args.phase == "load":
            emit(measure_load(args.variant, args.n, args.out), digits=6)
        else:
            emit(measure_build(args.variant, args.n, args.out), digits=6)
    else:
        emit(main(args.quick), indent=args.indent)
