"""The entity store's caches never disagree with the documents.

Since entities are cached as written (not read back) and the ids a fetch wrote serve the next
read, every fast path has to stay consistent with what the CRDT documents actually hold. This
property runs random fetches (lists and details, versioned and not, overlapping, stale),
local edits, set_query_data and peers' updates on two connected clients, and after every
step compares each normalized query's data and each cached entity with a fresh read of the
documents.
"""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from crdtsync import FakeClock, QueryClient, Replica
from crdtsync.normalize import EntityType
from crdtsync.origins import OriginKind, remote_origin
from crdtsync.values import MISSING, strict_equal

todo = EntityType("todo", version="v")
note = EntityType("note")  # no version field: the fetch-start rule
TYPES = {"todo": todo, "note": note}

ids = st.integers(0, 6)
ent = st.fixed_dictionaries({"id": ids, "title": st.sampled_from(["a", "b", "c"]), "v": st.integers(0, 3),
                             "tags": st.lists(st.sampled_from(["x", "y"]), max_size=2)})
step = st.one_of(
    st.tuples(st.just("fetch_list"), st.sampled_from(["A", "B"]), st.sampled_from(list(TYPES)),
              st.integers(0, 1), st.lists(ent, max_size=6)),
    st.tuples(st.just("fetch_one"), st.sampled_from(["A", "B"]), st.sampled_from(list(TYPES)), ids, ent),
    st.tuples(st.just("update"), st.sampled_from(["A", "B"]), st.sampled_from(list(TYPES)), ids,
              st.sampled_from(["p", "q"])),
    st.tuples(st.just("set_list"), st.sampled_from(["A", "B"]), st.sampled_from(list(TYPES)),
              st.integers(0, 1), st.lists(ent, max_size=4)),
    st.tuples(st.just("offline"), st.sampled_from(["A", "B"]), st.none(), st.none(), st.none()),
)


def returning(value: Any) -> Any:
    async def fn(ctx: Any) -> Any:
        return value

    return fn


def expected(client: QueryClient, key: tuple[Any, ...], t: EntityType) -> Any:
    """The query's data computed from the documents alone (no entity-store cache)."""
    r: Replica = client.replica
    stored = r.read(key)
    if stored is MISSING:
        return MISSING

    def entity(eid: str) -> Any:
        value = r.read_path(t.doc_id(eid), (eid,))
        return None if value is MISSING else value

    if isinstance(stored, list):
        out, seen = [], set()
        for eid in stored:
            if eid in seen:
                continue
            seen.add(eid)
            value = entity(str(eid))
            if value is not None:
                out.append(value)
        return out
    return entity(str(stored))


async def scenario(steps: list[Any]) -> None:
    clients = {"A": QueryClient(clock=FakeClock(), replica=Replica(client_id=1)),
               "B": QueryClient(clock=FakeClock(), replica=Replica(client_id=2))}
    for c in clients.values():
        for tname, t in TYPES.items():
            c.set_query_defaults((tname, "list"), normalize=[t])
            c.set_query_defaults((tname, "one"), normalize=t)
    online = {"A": True, "B": True}
    backlog: list[tuple[str, str, bytes]] = []

    def pipe(src: str, dst: str) -> None:
        def send(doc_id: str, update: bytes, origin: Any) -> None:
            if origin.kind is OriginKind.REMOTE:
                return
            if online[src] and online[dst]:
                clients[dst].replica.apply_update(doc_id, update, origin=remote_origin(src))
            else:
                backlog.append((dst, doc_id, update))

        clients[src].replica.on_update(send)

    pipe("A", "B")
    pipe("B", "A")
    keys: dict[str, set[tuple[tuple[Any, ...], str]]] = {"A": set(), "B": set()}
    observers = []
    for kind, who, tname, a, b in steps:
        c = clients[who]
        if kind == "offline":
            online[who] = not online[who]
            if online["A"] and online["B"]:
                pending, backlog[:] = list(backlog), []
                for dst, doc_id, update in pending:
                    clients[dst].replica.apply_update(doc_id, update, origin=remote_origin("peer"))
            continue
        t = TYPES[tname]
        if kind in ("fetch_list", "set_list"):
            key = (tname, "list", a)
            unique = list({e["id"]: e for e in b}.values()) if kind == "set_list" else b
            if kind == "fetch_list":
                await c.fetch_query(key, returning([dict(e) for e in unique]), normalize=[t], stale_time=0)
            else:
                c.set_query_data(key, [dict(e) for e in unique])
            if (key, tname) not in keys[who]:
                observers.append(c.observe(key, normalize=[t], enabled=False).subscribe(lambda r: None))
            keys[who].add((key, tname))
        elif kind == "fetch_one":
            key = (tname, "one", a)
            await c.fetch_query(key, returning(dict(b, id=a)), normalize=t, stale_time=0)
            keys[who].add((key, tname))
        elif kind == "update" and c.entities.get(t, a) is not None:
            c.entities.update(t, a, {"title": b})
        for name, client in clients.items():
            for key, kname in keys[name]:
                kt = TYPES[kname]
                want = expected(client, key, kt)
                got = client.get_query_data(key)
                assert strict_equal(got, None if want is MISSING else want), (name, key, got, want)
                for eid in range(7):
                    stored = client.replica.read_path(kt.doc_id(str(eid)), (str(eid),))
                    cached = client.entities.get(kt, eid)
                    assert strict_equal(cached, None if stored is MISSING else stored), (name, kname, eid)
    for stop in observers:
        stop()


@settings(max_examples=120, deadline=None)
@given(steps=st.lists(step, min_size=1, max_size=14))
def test_queries_and_cached_entities_always_match_the_documents(steps: list[Any]) -> None:
    asyncio.run(scenario(steps))
