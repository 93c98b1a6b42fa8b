"""QueryClient: fetching, staleness, deduplication, retries, invalidation, cancel, reset."""

from __future__ import annotations

import asyncio
import itertools
import random
from typing import Any

import pytest

from crdtsync import ClientError, FakeClock, QueryClient
from crdtsync.core.retry import default_retry_delay
from crdtsync.errors import QueryNotFoundError
from crdtsync.query import Cascades, KeyFamily, QueryFilters
from tests.query.conftest import FakeAPI, wait_for


async def test_fetch_then_serve_fresh_data_from_cache(client: QueryClient, api: FakeAPI, clock: FakeClock) -> None:
    api.data[("todos", 1)] = {"title": "a"}
    assert await client.fetch_query(("todos", 1), api.fetch, stale_time=10) == {"title": "a"}
    assert await client.fetch_query(("todos", 1), api.fetch, stale_time=10) == {"title": "a"}
    assert len(api.calls) == 1
    await clock.advance(11)
    api.data[("todos", 1)] = {"title": "b"}
    assert await client.fetch_query(("todos", 1), api.fetch, stale_time=10) == {"title": "b"}
    assert len(api.calls) == 2
    state = client.get_query_state(("todos", 1))
    assert state is not None and state.status == "success" and state.data_updated_at == clock.now()


async def test_stale_time_function_and_infinity(client: QueryClient, api: FakeAPI, clock: FakeClock) -> None:
    await client.fetch_query(("a",), api.fetch, stale_time=float("inf"))
    await clock.advance(10**6)
    await client.fetch_query(("a",), api.fetch, stale_time=float("inf"))
    assert len(api.calls) == 1
    await client.fetch_query(("b",), api.fetch, stale_time=lambda q: 5.0)
    await clock.advance(4)
    await client.fetch_query(("b",), api.fetch, stale_time=lambda q: 5.0)
    assert len(api.calls) == 2


async def test_concurrent_fetches_are_deduplicated(client: QueryClient, api: FakeAPI) -> None:
    api.gate = asyncio.Event()
    tasks = [asyncio.create_task(client.fetch_query(("x", 1), api.fetch)) for _ in range(20)]
    await wait_for(lambda: len(api.calls) >= 1, FakeClock())
    await asyncio.sleep(0)
    assert client.is_fetching() == 1
    api.gate.set()
    results = await asyncio.gather(*tasks)
    assert len(api.calls) == 1
    assert all(r is results[0] for r in results)
    assert client.is_fetching() == 0


async def test_retry_schedule_follows_backoff_with_jitter(clock: FakeClock) -> None:
    client = QueryClient(clock=clock, rng=random.Random(42))
    attempts: list[float] = []

    async def flaky(ctx: Any) -> Any:
        attempts.append(clock.now())
        if len(attempts) < 4:
            raise RuntimeError("boom")
        return "ok"

    task = asyncio.create_task(client.fetch_query(("r",), flaky, retry=3))
    expected_rng = random.Random(42)
    expected = [default_retry_delay(n, expected_rng) for n in (1, 2, 3)]
    t0 = clock.now()
    for total in [sum(expected[:i]) for i in (1, 2, 3)]:
        await clock.advance(total - (clock.now() - t0) - 1e-3)
        n_before = len(attempts)
        await clock.advance(2e-3)
        assert len(attempts) == n_before + 1
    assert await task == "ok"
    deltas = [b - a for a, b in itertools.pairwise(attempts)]
    assert deltas == pytest.approx(expected)
    for n, d in enumerate(deltas, start=1):
        full = min(2 ** (n - 1), 30)
        assert full / 2 <= d <= full
    await client.close()


async def test_retry_gives_up_and_counts_failures(client: QueryClient, clock: FakeClock) -> None:
    async def always_fail(ctx: Any) -> Any:
        raise RuntimeError("down")

    task = asyncio.create_task(client.fetch_query(("f",), always_fail, retry=2, retry_delay=1.0))
    await clock.advance(5)
    with pytest.raises(RuntimeError):
        await task
    state = client.get_query_state(("f",))
    assert state is not None
    assert state.status == "error" and state.fetch_failure_count == 3 and state.error_update_count == 1


async def test_client_errors_are_not_retried(client: QueryClient, clock: FakeClock) -> None:
    calls = 0

    class NotFound(ClientError):
        pass

    async def missing(ctx: Any) -> Any:
        nonlocal calls
        calls += 1
        raise NotFound("404", status=404)

    with pytest.raises(NotFound):
        await client.fetch_query(("nf",), missing, retry=5, retry_delay=0)
    assert calls == 1

    class Gone(Exception):
        retryable = False

    async def gone(ctx: Any) -> Any:
        nonlocal calls
        calls += 1
        raise Gone()

    with pytest.raises(Gone):
        await client.fetch_query(("g",), gone, retry=True, retry_delay=0)
    assert calls == 2


async def test_retry_predicate(client: QueryClient, clock: FakeClock) -> None:
    calls = 0

    async def fn(ctx: Any) -> Any:
        nonlocal calls
        calls += 1
        raise ValueError(calls)

    task = asyncio.create_task(client.fetch_query(("p",), fn, retry=lambda n, e: n < 2, retry_delay=0.5))
    await clock.advance(3)
    with pytest.raises(ValueError):
        await task
    assert calls == 2


async def test_missing_query_fn_is_a_typed_error(client: QueryClient) -> None:
    with pytest.raises(QueryNotFoundError):
        await client.fetch_query(("nofn",))


async def test_query_defaults_by_prefix(client: QueryClient, api: FakeAPI) -> None:
    client.set_query_defaults(("todos",), query_fn=api.fetch, stale_time=100)
    await client.fetch_query(("todos", 1))
    await client.fetch_query(("todos", 1))
    assert len(api.calls) == 1
    with pytest.raises(TypeError):
        client.set_query_defaults(("x",), stail_time=3)


async def test_prefetch_never_raises_and_ensure_uses_cache(client: QueryClient, api: FakeAPI) -> None:
    api.fail_next.append(RuntimeError("x"))
    assert await client.prefetch_query(("e",), api.fetch) is None
    data = await client.ensure_query_data(("e",), api.fetch)
    assert data == {"key": ["e"]}
    assert await client.ensure_query_data(("e",), api.fetch) == data
    assert len(api.calls) == 2


async def test_get_query_data_sees_remote_writes(client: QueryClient) -> None:
    other = QueryClient()
    other.set_query_data(("todos", 9), {"title": "from a peer"})
    client.replica.apply_update("todos", other.replica.get_update("todos"))
    assert client.get_query_data(("todos", 9)) == {"title": "from a peer"}
    assert client.get_query_data(("todos", 10)) is None


async def test_set_query_data_with_updater(client: QueryClient) -> None:
    client.set_query_data(("c",), {"n": 1})
    client.set_query_data(("c",), lambda old: {"n": old["n"] + 1})
    assert client.get_query_data(("c",)) == {"n": 2}
    client.set_query_data(("c",), lambda old: None)  # no-op, as in TanStack
    assert client.get_query_data(("c",)) == {"n": 2}


async def test_set_and_get_queries_data(client: QueryClient) -> None:
    for i in range(3):
        client.set_query_data(("todos", i), {"n": i})
    client.set_query_data(("users", 1), {"n": 100})
    changed = client.set_queries_data(("todos",), lambda d: {"n": d["n"] * 10})
    assert sorted(v["n"] for _, v in changed) == [0, 10, 20]
    assert sorted(v["n"] for _, v in client.get_queries_data(("todos",))) == [0, 10, 20]
    assert client.get_queries_data(("users",)) == [(("users", 1), {"n": 100})]


async def test_invalidate_refetch_types(client: QueryClient, api: FakeAPI, clock: FakeClock) -> None:
    await client.fetch_query(("t", 1), api.fetch, stale_time=100)
    await client.fetch_query(("t", 2), api.fetch, stale_time=100)
    obs = client.observe(("t", 1), api.fetch, stale_time=100)
    stop = obs.subscribe(lambda r: None)
    await clock.settle()
    api.calls.clear()
    await client.invalidate_queries(("t",))  # active only
    assert api.calls == [("t", 1)]
    assert client.get_query_state(("t", 2)).is_invalidated  # type: ignore[union-attr]
    api.calls.clear()
    await client.invalidate_queries(("t",), refetch_type="inactive")
    assert api.calls == [("t", 2)]
    api.calls.clear()
    await client.invalidate_queries(("t",), refetch_type="none")
    assert api.calls == []
    api.calls.clear()
    await client.invalidate_queries(("t",), refetch_type="all")
    assert sorted(api.calls) == [("t", 1), ("t", 2)]
    api.calls.clear()
    await client.invalidate_queries(("t", 2), exact=True, refetch_type="all")
    assert api.calls == [("t", 2)]
    stop()


async def test_invalidation_cascades(clock: FakeClock, api: FakeAPI) -> None:
    users = KeyFamily("users", detail=lambda uid: (uid,))
    posts = KeyFamily("posts", by_user=lambda uid: ("by_user", uid))
    comments = KeyFamily("comments", on_posts_of=lambda uid: ("posts_of", uid))
    cascades = Cascades()
    cascades.add(users.all, lambda k: posts.by_user(k[1]) if len(k) > 1 else posts.all)
    cascades.add(posts.all, lambda k: comments.on_posts_of(k[2]) if len(k) > 2 else None)
    cascades.add(comments.all, lambda k: users.detail(k[2]) if len(k) > 2 else None)  # a cycle: must end
    client = QueryClient(clock=clock, cascades=cascades)
    for key in (users.detail(1), users.detail(2), posts.by_user(1), posts.by_user(2), comments.on_posts_of(1)):
        await client.fetch_query(key, api.fetch, stale_time=100)
    await client.invalidate_queries(users.detail(1), refetch_type="none")
    invalid = sorted(q.query_key for q in client.query_cache.get_all() if q.state.is_invalidated)
    assert invalid == sorted([users.detail(1), posts.by_user(1), comments.on_posts_of(1)])
    await client.close()


async def test_filters(client: QueryClient, api: FakeAPI, clock: FakeClock) -> None:
    await client.fetch_query(("f", {"page": 1, "q": "x"}), api.fetch, stale_time=5)
    await client.fetch_query(("f", {"page": 2, "q": "x"}), api.fetch, stale_time=50)
    assert len(client.query_cache.find_all(("f", {"q": "x"}))) == 2
    assert len(client.query_cache.find_all(("f", {"page": 2}))) == 1
    await clock.advance(10)
    assert [q.query_key[1]["page"] for q in client.query_cache.find_all(("f",), stale=True)] == [1]
    assert len(client.query_cache.find_all(QueryFilters(predicate=lambda q: q.query_key[1]["page"] == 2))) == 1
    assert client.query_cache.find_all(("f",), type="active") == []
    assert len(client.query_cache.find_all(("f",), fetch_status="idle")) == 2


async def test_cancel_keeps_previous_data_and_can_revert(client: QueryClient, api: FakeAPI) -> None:
    api.data[("k",)] = "v1"
    await client.fetch_query(("k",), api.fetch)
    before = client.get_query_state(("k",))
    api.gate = asyncio.Event()
    api.data[("k",)] = "v2"
    task = asyncio.create_task(client.fetch_query(("k",), api.fetch))
    await wait_for(lambda: client.is_fetching() == 1, FakeClock())
    await client.cancel_queries(("k",))
    assert await task == "v1"  # as TanStack: the reverted fetch resolves with the restored data
    state = client.get_query_state(("k",))
    assert client.get_query_data(("k",)) == "v1"
    assert state == before  # reverted metadata, same data
    api.gate.set()


async def test_reset_and_remove(client: QueryClient, api: FakeAPI, clock: FakeClock) -> None:
    await client.fetch_query(("rr",), api.fetch, stale_time=100)
    await client.reset_queries(("rr",))
    state = client.get_query_state(("rr",))
    assert state is not None and state.data_updated_at == 0.0
    client.remove_queries(("rr",))
    assert client.get_query_state(("rr",)) is None
    # The shared document data stays: a peer may hold it too.
    assert client.get_query_data(("rr",)) == {"key": ["rr"]}


async def test_initial_data(client: QueryClient, api: FakeAPI, clock: FakeClock) -> None:
    data = await client.fetch_query(("i",), api.fetch, initial_data={"seed": 1}, stale_time=10)
    assert data == {"seed": 1} and api.calls == []
    await clock.advance(11)
    assert await client.fetch_query(("i",), api.fetch, stale_time=10) == {"key": ["i"]}


async def test_network_mode_online_pauses_until_online(client: QueryClient, api: FakeAPI, clock: FakeClock) -> None:
    client.online_manager.set_online(False)
    task = asyncio.create_task(client.fetch_query(("n",), api.fetch))
    await clock.settle()
    assert client.get_query_state(("n",)).fetch_status == "paused"  # type: ignore[union-attr]
    assert api.calls == []
    client.online_manager.set_online(True)
    assert await task == {"key": ["n"]}
    # network_mode always ignores the online state.
    client.online_manager.set_online(False)
    assert await client.fetch_query(("n2",), api.fetch, network_mode="always") == {"key": ["n2"]}


async def test_offline_first_pauses_only_retries(client: QueryClient, api: FakeAPI, clock: FakeClock) -> None:
    from crdtsync.query import NetworkMode

    client.online_manager.set_online(False)
    api.fail_next.append(RuntimeError("no network"))
    task = asyncio.create_task(client.fetch_query(("o",), api.fetch, network_mode=NetworkMode.OFFLINE_FIRST,
                                                  retry=1, retry_delay=0))
    await clock.advance(1)
    assert len(api.calls) == 1
    assert client.get_query_state(("o",)).fetch_status == "paused"  # type: ignore[union-attr]
    client.online_manager.set_online(True)
    assert await task == {"key": ["o"]}


async def test_infinite_query(client: QueryClient) -> None:
    async def page(ctx: Any) -> Any:
        start = ctx.page_param
        return {"items": list(range(start, start + 3)), "next": start + 3 if start + 3 < 12 else None}

    key = ("feed",)
    data = await client.fetch_infinite_query(key, page, initial_page_param=0,
                                             get_next_page_param=lambda last, *_: last["next"],
                                             get_previous_page_param=lambda first, pages, p, ps: p - 3 if p else None,
                                             max_pages=3, pages=2)
    assert data["page_params"] == [0, 3]
    data = await client.fetch_next_page(key)
    data = await client.fetch_next_page(key)
    assert data["page_params"] == [3, 6, 9]  # max_pages dropped the first
    assert (await client.fetch_next_page(key))["page_params"] == [3, 6, 9]  # no next page
    data = await client.fetch_previous_page(key)
    assert data["page_params"] == [0, 3, 6]
    await client.invalidate_queries(key, refetch_type="all")
    assert client.get_query_data(key)["page_params"] == [0, 3, 6]
    assert client.get_query_data(key)["pages"][2]["items"] == [6, 7, 8]


async def test_cache_events_and_event_log(client: QueryClient, api: FakeAPI) -> None:
    from crdtsync.query import QueryAdded, QueryRemoved, QueryUpdated

    events: list[Any] = []
    client.query_cache.subscribe(events.append)
    client.query_cache.enable_event_log(maxlen=5)
    await client.fetch_query(("ev",), api.fetch)
    client.remove_queries(("ev",))
    kinds = [type(e) for e in events]
    assert kinds[0] is QueryAdded and kinds[-1] is QueryRemoved
    actions = [type(e.action).__name__ for e in events if isinstance(e, QueryUpdated)]
    assert actions == ["Fetch", "Success"]
    log = client.query_cache.event_log()
    assert [e.event for e in log][-1] == "QueryRemoved" and len(log) <= 5


async def test_queries_without_observers_are_collected_after_gc_time(client: QueryClient, api: FakeAPI,
                                                                     clock: FakeClock) -> None:
    await client.fetch_query(("a",), api.fetch, gc_time=1)
    client.set_query_data(("b",), 1)  # default gc_time applies
    client.observe(("c",), api.fetch, gc_time=1)  # never subscribed
    await clock.advance(2)
    assert client.get_query_state(("a",)) is None and client.get_query_state(("c",)) is None
    assert client.get_query_state(("b",)) is not None
    await clock.advance(300)
    assert client.get_query_state(("b",)) is None
    assert client.get_query_data(("b",)) == 1  # the shared document data stays


async def test_gc_waits_for_a_fetch_in_flight(client: QueryClient, api: FakeAPI, clock: FakeClock) -> None:
    api.gate = asyncio.Event()
    task = asyncio.create_task(client.fetch_query(("slow",), api.fetch, gc_time=1))
    await clock.advance(5)  # the gc timer fires while the fetch runs: the query is kept
    assert client.get_query_state(("slow",)) is not None
    api.gate.set()
    await task
    await clock.advance(2)
    assert client.get_query_state(("slow",)) is None


async def test_replacing_a_fetch_that_has_not_started_is_followed_not_leaked(client: QueryClient) -> None:
    n = 0

    async def fn(ctx: Any) -> Any:
        nonlocal n
        n += 1
        return n

    client.set_query_data(("k",), 0)
    obs = client.observe(("k",), fn, enabled=False)
    stop = obs.subscribe(lambda r: None)
    results = await asyncio.gather(obs.refetch(), obs.refetch(), return_exceptions=True)
    assert [r.data for r in results] == [1, 1]  # both follow the one fetch that ran
    query = client.query_cache.find(("k",))
    assert query is not None
    t1 = asyncio.create_task(query.fetch(cancel_refetch=True))
    t2 = asyncio.create_task(query.fetch(cancel_refetch=True))
    assert await asyncio.gather(t1, t2) == [2, 2] and not t1.cancelled()
    stop()


def test_set_and_get_query_data_work_without_an_event_loop() -> None:
    client = QueryClient()
    client.set_query_data(("sync", 1), {"x": 1})
    assert client.get_query_data(("sync", 1)) == {"x": 1}
    client.set_query_data(("sync", 1), lambda old: {"x": old["x"] + 1})
    assert client.get_query_data(("sync", 1)) == {"x": 2}
