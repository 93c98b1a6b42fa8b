"""Conformance suite for :class:`~crdtsync.storage.DocumentStore` implementations.

Every store must pass it::

    from crdtsync.testing.storage_suite import check_storage

    async def test_my_store(tmp_path):
        await check_storage(lambda: MyStore(tmp_path / "x"))

``make_store`` is called once per check and must return a *fresh, empty* store (or an
awaitable of one). The suite closes every store it opens. It raises ``AssertionError`` with
the name of the failing check. Run single checks with ``check_storage(make, only={"name"})``;
the names are the keys of :data:`CHECKS`.
"""

from __future__ import annotations

import asyncio
import inspect
import random
from collections.abc import Awaitable, Callable, Collection
from typing import Any

from pycrdt import Array, Doc, Map, Text

from ..errors import StorageError
from ..storage.base import DocumentStore

MakeStore = Callable[[], DocumentStore | Awaitable[DocumentStore]]
Check = Callable[[DocumentStore], Awaitable[None]]


def _content(state: bytes | None) -> Any:
    """Decode a state into plain Python for comparison."""
    assert state is not None, "expected a stored state, got None"
    doc: Doc = Doc()  # type: ignore[type-arg]
    doc.apply_update(state)
    return {
        "m": doc.get("m", type=Map).to_py(),
        "t": str(doc.get("t", type=Text)),
        "a": doc.get("a", type=Array).to_py(),
    }


class _Writer:
    """A pycrdt doc that records every update it produces."""

    def __init__(self, client_id: int = 1):
        self.doc: Doc = Doc(client_id=client_id)  # type: ignore[type-arg]
        self.updates: list[bytes] = []
        self.m = self.doc.get("m", type=Map)
        self.t = self.doc.get("t", type=Text)
        self.a = self.doc.get("a", type=Array)
        self._sub = self.doc.observe(lambda ev: self.updates.append(bytes(ev.update)))

    def random_edits(self, rng: random.Random, n: int) -> None:
        for _ in range(n):
            choice = rng.random()
            if choice < 0.5:
                self.m[f"k{rng.randrange(20)}"] = rng.choice(["x", "é€", 3.5, True, None, "long" * 10])
            elif choice < 0.8:
                pos = rng.randrange(len(self.t) + 1)
                # positions in Text count UTF-8 bytes: stay ASCII for random positions
                self.t.insert(pos, rng.choice(["a", "bc", "hello "]))
            elif choice < 0.9 and len(self.a):
                del self.a[rng.randrange(len(self.a))]
            else:
                self.a.append(rng.randrange(1000))

    def content(self) -> Any:
        return _content(bytes(self.doc.get_update()))

    def close(self) -> None:
        self.doc.unobserve(self._sub)


async def _load_unknown(store: DocumentStore) -> None:
    assert await store.load("nope") is None
    assert await store.list_docs() == []


async def _append_load(store: DocumentStore) -> None:
    w = _Writer()
    w.random_edits(random.Random(1), 200)
    for u in w.updates:
        await store.append("doc", u)
    assert _content(await store.load("doc")) == w.content()
    w.close()


async def _concurrent_appends(store: DocumentStore) -> None:
    w = _Writer()
    w.random_edits(random.Random(2), 600)
    await asyncio.gather(*(store.append("doc", u) for u in w.updates))
    assert _content(await store.load("doc")) == w.content()
    w.close()


async def _out_of_order(store: DocumentStore) -> None:
    for seed in range(5):
        rng = random.Random(seed)
        w = _Writer(client_id=seed + 10)
        w.random_edits(rng, 80)
        shuffled = list(w.updates)
        rng.shuffle(shuffled)
        doc_id = f"shuffled/{seed}"
        for u in shuffled:
            await store.append(doc_id, u)
        assert _content(await store.load(doc_id)) == w.content(), f"seed {seed}"
        w.close()


async def _isolation(store: DocumentStore) -> None:
    a, b = _Writer(1), _Writer(2)
    a.m["who"] = "a"
    b.m["who"] = "b"
    for u in a.updates:
        await store.append("a", u)
    for u in b.updates:
        await store.append("b", u)
    assert _content(await store.load("a"))["m"] == {"who": "a"}
    assert _content(await store.load("b"))["m"] == {"who": "b"}
    assert await store.list_docs() == ["a", "b"]
    a.close()
    b.close()


async def _replace(store: DocumentStore) -> None:
    w = _Writer()
    w.random_edits(random.Random(3), 50)
    for u in w.updates:
        await store.append("doc", u)
    other = _Writer(7)
    other.m["only"] = "this"
    await store.replace("doc", bytes(other.doc.get_update()))
    assert _content(await store.load("doc"))["m"] == {"only": "this"}
    # appends after a replace build on the new state
    other.m["more"] = "yes"
    await store.append("doc", other.updates[-1])
    assert _content(await store.load("doc"))["m"] == {"only": "this", "more": "yes"}
    await store.replace("fresh", bytes(other.doc.get_update()))
    assert "fresh" in await store.list_docs()
    w.close()
    other.close()


async def _delete(store: DocumentStore) -> None:
    w = _Writer()
    w.m["x"] = 1.0
    await store.append("gone", w.updates[0])
    await store.append("kept", w.updates[0])
    await store.delete("gone")
    await store.delete("never-existed")
    assert await store.load("gone") is None
    assert await store.list_docs() == ["kept"]
    w.close()


async def _doc_ids(store: DocumentStore) -> None:
    w = _Writer()
    w.m["x"] = "y"
    ids = ["with/slash", "ünïcödé ✓", "a" * 1000, "?q=1&t=2", " "]
    for doc_id in ids:
        await store.append(doc_id, w.updates[0])
    assert await store.list_docs() == sorted(ids)
    for doc_id in ids:
        assert _content(await store.load(doc_id))["m"] == {"x": "y"}
    for bad in ["", "a\x00b", "x" * 5000, 5, None]:
        for call in (store.load(bad), store.append(bad, w.updates[0])):  # type: ignore[arg-type]
            try:
                await call
            except StorageError:
                pass
            else:
                raise AssertionError(f"doc id {bad!r} accepted")
    w.close()


async def _bad_update_type(store: DocumentStore) -> None:
    try:
        await store.append("doc", "not bytes")  # type: ignore[arg-type]
    except StorageError:
        pass
    else:
        raise AssertionError("a str update was accepted")


async def _empty_and_large(store: DocumentStore) -> None:
    w = _Writer()
    w.t.insert(0, "z" * 300_000)
    await store.append("big", w.updates[-1])
    await store.append("big", b"\x00\x00")  # the empty update is valid
    assert _content(await store.load("big"))["t"] == "z" * 300_000
    w.close()


async def _many_small(store: DocumentStore) -> None:
    w = _Writer()
    for i in range(2000):
        w.m[f"k{i % 10}"] = float(i)
    for start in range(0, len(w.updates), 200):
        await asyncio.gather(*(store.append("hot", u) for u in w.updates[start : start + 200]))
    assert _content(await store.load("hot"))["m"] == {f"k{i}": float(1990 + i) for i in range(10)}
    w.close()


CHECKS: dict[str, Check] = {
    "load_unknown": _load_unknown,
    "append_load": _append_load,
    "concurrent_appends": _concurrent_appends,
    "out_of_order": _out_of_order,
    "isolation": _isolation,
    "replace": _replace,
    "delete": _delete,
    "doc_ids": _doc_ids,
    "bad_update_type": _bad_update_type,
    "empty_and_large": _empty_and_large,
    "many_small": _many_small,
}


async def _open(make_store: MakeStore) -> DocumentStore:
    made = make_store()
    if inspect.isawaitable(made):
        return await made
    return made


async def check_storage(make_store: MakeStore, *, only: Collection[str] | None = None) -> None:
    """Run every conformance check (or those named in ``only``) against fresh stores."""
    names = list(CHECKS) if only is None else list(only)
    unknown = set(names) - set(CHECKS)
    if unknown:
        raise ValueError(f"unknown checks: {sorted(unknown)}")
    for name in names:
        store = await _open(make_store)
        try:
            await CHECKS[name](store)
        except AssertionError as exc:
            raise AssertionError(f"storage check {name!r} failed: {exc}") from exc
        finally:
            await store.close()
        # a closed store refuses work
        try:
            await store.load("doc")
        except StorageError:
            pass
        else:
            raise AssertionError(f"storage check {name!r}: load after close did not raise StorageError")
