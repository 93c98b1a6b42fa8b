"""Ported from TanStack query-core ``queryObserver.test.tsx`` (behaviour, not code)."""

from __future__ import annotations

import asyncio

import pytest

from crdtsync import INFINITY, FakeClock, QueryClient
from crdtsync.query.state import Invalidate
from tests.tanstack.conftest import Server, returning, settle


async def test_initial_data_applies_to_existing_query_without_data(client: QueryClient) -> None:
    """queryObserver: 'should be able to set initial data on an existing query' (a query that
    exists without data takes the observer's initialData)."""
    client.observe(("od",), returning("fetched"))
    observer = client.observe(("od",), returning("fetched"), initial_data="initial", stale_time=60)
    assert client.get_query_data(("od",)) == "initial"
    assert observer.get_current_result().data == "initial"
    assert observer.get_current_result().status == "success"


async def test_refetch_without_subscriber_returns_fresh_result(client: QueryClient) -> None:
    """queryObserver: 'should be able to fetch with a selector' / refetch() resolves with the
    updated result even when nobody subscribed."""
    observer = client.observe(("rf",), returning("data"))
    result = await observer.refetch()
    assert result.data == "data" and result.status == "success"
    assert observer.get_current_result() is result


async def test_placeholder_data_keeps_identity_across_results(client: QueryClient) -> None:
    """queryObserver: 'should not recompute placeholderData if it did not change' / an equal
    placeholder keeps the previous object (memoised, structurally shared)."""
    server = Server()
    made: list[object] = []

    def placeholder(previous: object) -> dict[str, int]:
        made.append(previous)
        return {"placeholder": 1}

    observer = client.observe(("ph",), server.fn, placeholder_data=placeholder)
    first = observer.get_current_result()
    results: list[object] = []
    unsubscribe = observer.subscribe(results.append)
    await settle()
    current = observer.get_current_result()
    assert current.is_placeholder_data and current.is_fetching
    assert current.data is first.data
    assert len(made) == 1  # the same placeholder function is not called again
    observer.set_observer_options(placeholder_data=lambda previous: {"placeholder": 1})
    assert observer.get_current_result().data is first.data  # an equal new one: same object
    server.release({"real": 1})
    await settle()
    assert observer.get_current_result().data == {"real": 1}
    unsubscribe()


async def test_disabled_observer_is_not_stale(client: QueryClient, clock: FakeClock) -> None:
    """queryObserver: 'should return isStale false if the query is disabled' (and it stays so
    without the stale timer spinning)."""
    observer = client.observe(("dis",), returning("d"), enabled=False)
    unsubscribe = observer.subscribe(lambda r: None)
    assert observer.get_current_result().is_stale is False
    await client.fetch_query(("dis",), returning("d"))
    await asyncio.wait_for(clock.advance(10), 2)
    assert observer.get_current_result().is_stale is False
    observer.set_observer_options(enabled=True)
    assert observer.get_current_result().is_stale is True
    unsubscribe()


async def test_subscribe_triggers_fetch(client: QueryClient) -> None:
    """queryObserver: 'should trigger a fetch when subscribed'."""
    calls: list[object] = []
    observer = client.observe(("s",), returning("data", calls))
    unsubscribe = observer.subscribe(lambda r: None)
    await settle()
    assert len(calls) == 1 and observer.get_current_result().data == "data"
    unsubscribe()


async def test_no_fetch_before_subscribe(client: QueryClient) -> None:
    """queryObserver: 'should not trigger a fetch when not subscribed'."""
    calls: list[object] = []
    client.observe(("s",), returning("data", calls))
    await settle()
    assert calls == []


async def test_no_fetch_when_subscribed_and_disabled(client: QueryClient) -> None:
    """queryObserver: 'should not trigger a fetch when subscribed and disabled'."""
    calls: list[object] = []
    observer = client.observe(("s",), returning("data", calls), enabled=False)
    unsubscribe = observer.subscribe(lambda r: None)
    await settle()
    assert calls == [] and observer.get_current_result().fetch_status == "idle"
    unsubscribe()


async def test_latest_data_after_subscribing(client: QueryClient) -> None:
    """queryObserver: 'should be able to read latest data after subscribing'."""
    client.set_query_data(("s",), "data")
    observer = client.observe(("s",), returning("new"), enabled=False)
    unsubscribe = observer.subscribe(lambda r: None)
    assert observer.get_current_result().data == "data"
    unsubscribe()


async def test_watch_without_query_fn(client: QueryClient) -> None:
    """queryObserver: 'should be able to watch a query without defining a query function'."""
    observer = client.observe(("w",), enabled=False)
    results: list[object] = []
    unsubscribe = observer.subscribe(lambda r: results.append(r.data))
    client.set_query_data(("w",), "set")
    assert results == ["set"]
    unsubscribe()


async def test_select_on_fetch(client: QueryClient) -> None:
    """queryObserver: 'should be able to fetch with a selector'."""
    observer = client.observe(("sel",), returning({"count": 1}), select=lambda d: {"my_count": d["count"]})
    results: list[object] = []
    unsubscribe = observer.subscribe(lambda r: results.append(r.data))
    await settle()
    assert observer.get_current_result().data == {"my_count": 1}
    assert results[-1] == {"my_count": 1}
    unsubscribe()


async def test_select_with_refetch_method(client: QueryClient) -> None:
    """queryObserver: 'should be able to fetch with a selector using the fetch method'."""
    observer = client.observe(("sel",), returning({"count": 1}), select=lambda d: {"my_count": d["count"]})
    result = await observer.refetch()
    assert result.data == {"my_count": 1}


async def test_select_runs_again_when_data_changes(client: QueryClient) -> None:
    """queryObserver: 'should run the selector again if the data changed'."""
    runs: list[object] = []

    def select(d: dict[str, int]) -> int:
        runs.append(d)
        return d["count"]

    client.set_query_data(("sel",), {"count": 1})
    observer = client.observe(("sel",), enabled=False, select=select)
    unsubscribe = observer.subscribe(lambda r: None)
    client.set_query_data(("sel",), {"count": 2})
    assert observer.get_current_result().data == 2
    assert [r["count"] for r in runs][-1] == 2  # type: ignore[index]
    unsubscribe()


async def test_select_not_rerun_when_data_and_selector_unchanged(client: QueryClient) -> None:
    """queryObserver: 'should not run the selector again if the data and selector did not change'."""
    runs = [0]

    def select(d: dict[str, int]) -> int:
        runs[0] += 1
        return d["count"]

    client.set_query_data(("sel",), {"count": 1})
    observer = client.observe(("sel",), enabled=False, select=select)
    unsubscribe = observer.subscribe(lambda r: None)
    before = runs[0]
    client.set_query_data(("sel",), {"count": 1})  # equal: structurally shared, same object
    client.query_cache.find(("sel",)).dispatch(Invalidate())  # type: ignore[union-attr]
    assert runs[0] == before
    unsubscribe()


async def test_select_runs_again_when_selector_changes(client: QueryClient) -> None:
    """queryObserver: 'should run the selector again if the selector changed'."""
    client.set_query_data(("sel",), {"count": 1})
    observer = client.observe(("sel",), enabled=False, select=lambda d: d["count"])
    unsubscribe = observer.subscribe(lambda r: None)
    observer.set_observer_options(select=lambda d: d["count"] * 10)
    assert observer.get_current_result().data == 10
    unsubscribe()


async def test_select_output_is_structurally_shared(client: QueryClient) -> None:
    """queryObserver: 'should structurally share the selector'."""
    client.set_query_data(("sel",), {"items": [1, 2], "other": 1})
    observer = client.observe(("sel",), enabled=False, select=lambda d: {"items": list(d["items"])})
    unsubscribe = observer.subscribe(lambda r: None)
    first = observer.get_current_result().data
    client.set_query_data(("sel",), {"items": [1, 2], "other": 2})
    assert observer.get_current_result().data is first
    unsubscribe()


async def test_select_change_elsewhere_notifies_nobody(client: QueryClient) -> None:
    """queryObserver: 'should not notify when the selected data did not change' (tracked data is
    the selected value)."""
    client.set_query_data(("sel",), {"a": 1, "b": 1})
    observer = client.observe(("sel",), enabled=False, stale_time=INFINITY, select=lambda d: d["a"])
    results: list[object] = []
    unsubscribe = observer.subscribe(results.append)
    client.set_query_data(("sel",), {"a": 1, "b": 2})
    assert results == []
    client.set_query_data(("sel",), {"a": 2, "b": 2})
    assert len(results) == 1
    unsubscribe()


async def test_multiple_subscribers(client: QueryClient) -> None:
    """queryObserver: 'should be able to handle multiple subscribers'."""
    calls: list[object] = []
    observer = client.observe(("m",), returning("data", calls))
    seen1: list[object] = []
    seen2: list[object] = []
    u1 = observer.subscribe(lambda r: seen1.append(r.data))
    u2 = observer.subscribe(lambda r: seen2.append(r.data))
    await settle()
    assert len(calls) == 1 and seen1[-1] == "data" and seen2[-1] == "data"
    u1()
    u2()


async def test_refetch_interval_stops_at_unsubscribe(client: QueryClient, clock: FakeClock) -> None:
    """queryObserver: 'should clear interval when unsubscribing to a refetchInterval query'."""
    calls: list[object] = []
    observer = client.observe(("iv",), returning("d", calls), refetch_interval=1, gc_time=0)
    unsubscribe = observer.subscribe(lambda r: None)
    await clock.advance(2.5)
    assert len(calls) == 3
    unsubscribe()
    await clock.advance(10)
    assert len(calls) == 3 and client.query_cache.find(("iv",)) is None


async def test_refetch_interval_as_function(client: QueryClient, clock: FakeClock) -> None:
    """queryObserver: 'should be able to handle refetchInterval as function' (False stops it)."""
    calls: list[object] = []
    n = [0]

    def fn(ctx: object) -> int:
        n[0] += 1
        return n[0]

    observer = client.observe(("ivf",), returning(fn, calls),
                              refetch_interval=lambda data, q: 1 if (data or 0) < 3 else False)
    unsubscribe = observer.subscribe(lambda r: None)
    await clock.advance(10)
    assert observer.get_current_result().data == 3 and len(calls) == 3
    unsubscribe()


async def test_refetch_interval_paused_in_background(client: QueryClient, clock: FakeClock) -> None:
    """queryObserver: 'should not refetch in background if refetchIntervalInBackground is false'."""
    calls: list[object] = []
    client.focus_manager.set_focused(False)
    observer = client.observe(("ivb",), returning("d", calls), refetch_interval=1)
    unsubscribe = observer.subscribe(lambda r: None)
    await clock.advance(5)
    assert len(calls) == 1
    observer.set_observer_options(refetch_interval_in_background=True)
    await clock.advance(2)
    assert len(calls) >= 2
    unsubscribe()
    client.focus_manager.set_focused(True)


async def test_placeholder_shown_while_pending(client: QueryClient) -> None:
    """queryObserver: 'uses placeholderData as non-cache data when pending a query with no data'."""
    server = Server()
    observer = client.observe(("ph",), server.fn, placeholder_data="placeholder")
    unsubscribe = observer.subscribe(lambda r: None)
    await settle()
    result = observer.get_current_result()
    assert result.data == "placeholder" and result.is_placeholder_data and result.status == "success"
    assert client.get_query_data(("ph",)) is None  # never stored
    server.release("data")
    await settle()
    result = observer.get_current_result()
    assert result.data == "data" and not result.is_placeholder_data
    unsubscribe()


async def test_placeholder_not_used_when_data_exists(client: QueryClient) -> None:
    """queryObserver: 'should return isPlaceholderData false when data is set'."""
    client.set_query_data(("ph",), "data")
    observer = client.observe(("ph",), returning("x"), placeholder_data="placeholder", stale_time=INFINITY)
    result = observer.get_current_result()
    assert result.data == "data" and result.is_placeholder_data is False


async def test_placeholder_goes_through_select(client: QueryClient) -> None:
    """queryObserver: 'should use placeholderData with select' (the placeholder is selected like
    data)."""
    server = Server()
    observer = client.observe(("ph",), server.fn, placeholder_data={"n": 2}, select=lambda d: d["n"] * 10)
    unsubscribe = observer.subscribe(lambda r: None)
    await settle()
    assert observer.get_current_result().data == 20 and observer.get_current_result().is_placeholder_data
    server.release({"n": 3})
    await settle()
    assert observer.get_current_result().data == 30
    unsubscribe()
    none = client.observe(("ph0",), server.fn, placeholder_data=lambda prev: None, select=lambda d: d["n"])
    assert none.get_current_result().data is None and not none.get_current_result().is_placeholder_data


async def test_notify_on_change_props_limits_notifications(client: QueryClient) -> None:
    """queryObserver: 'should not notify if notifyOnChangeProps tracked prop did not change'."""
    observer = client.observe(("nc",), returning("d"), notify_on_change_props=["data"])
    results: list[object] = []
    unsubscribe = observer.subscribe(results.append)
    await settle()
    assert len(results) == 1  # the data arrived; fetch_status changes did not notify
    await observer.refetch()
    assert len(results) == 1
    unsubscribe()


async def test_current_result_is_stable(client: QueryClient) -> None:
    """queryObserver: 'getCurrentResult should return the same result' when nothing changed."""
    client.set_query_data(("cr",), "d")
    observer = client.observe(("cr",), enabled=False)
    assert observer.get_current_result() is observer.get_current_result()


async def test_is_stale_after_stale_time(client: QueryClient, clock: FakeClock) -> None:
    """queryObserver: 'should be stale after staleTime' (the stale timer notifies)."""
    observer = client.observe(("st",), returning("d"), stale_time=10)
    results: list[bool] = []
    unsubscribe = observer.subscribe(lambda r: results.append(r.is_stale))
    await settle()
    assert observer.get_current_result().is_stale is False
    await clock.advance(11)
    assert observer.get_current_result().is_stale is True and results[-1] is True
    unsubscribe()


async def test_refetch_throw_on_error(client: QueryClient) -> None:
    """queryObserver: 'should throw an error if throwOnError option is set' on refetch."""

    async def boom(ctx: object) -> None:
        raise RuntimeError("x")

    observer = client.observe(("te",), boom, retry=0, throw_on_error=True, enabled=False)
    with pytest.raises(RuntimeError):
        await observer.refetch()
    quiet = client.observe(("te",), boom, retry=0, enabled=False)
    result = await quiet.refetch()
    assert result.status == "error" and isinstance(result.error, RuntimeError)


async def test_paused_while_offline(client: QueryClient) -> None:
    """queryObserver: 'should set fetchStatus to paused when offline'."""
    client.online_manager.set_online(False)
    observer = client.observe(("off",), returning("d"))
    unsubscribe = observer.subscribe(lambda r: None)
    await settle()
    result = observer.get_current_result()
    assert result.fetch_status == "paused" and result.is_paused and result.status == "pending"
    client.online_manager.set_online(True)
    await settle()
    assert observer.get_current_result().data == "d"
    unsubscribe()


async def test_refetch_on_mount_false_and_always(client: QueryClient) -> None:
    """queryObserver: 'should not refetch on mount if refetchOnMount is false' and 'should refetch
    on mount if refetchOnMount is always' (even when fresh)."""
    calls: list[object] = []
    await client.fetch_query(("rm",), returning("d", calls))
    client.observe(("rm",), returning("d", calls), refetch_on_mount=False).subscribe(lambda r: None)()
    await settle()
    assert len(calls) == 1
    client.observe(("rm",), returning("d", calls), stale_time=INFINITY,
                   refetch_on_mount="always").subscribe(lambda r: None)()
    await settle()
    assert len(calls) == 2


async def test_fresh_data_not_refetched_on_mount(client: QueryClient) -> None:
    """queryObserver: 'should not refetch on mount when data is fresh'."""
    calls: list[object] = []
    await client.fetch_query(("fm",), returning("d", calls))
    unsubscribe = client.observe(("fm",), returning("d", calls), stale_time=60).subscribe(lambda r: None)
    await settle()
    assert len(calls) == 1
    unsubscribe()


async def test_refetch_on_focus_options(client: QueryClient) -> None:
    """queryObserver: refetchOnWindowFocus false / true (stale only) / 'always'."""
    c_false: list[object] = []
    c_true: list[object] = []
    c_always: list[object] = []
    unsubs = [
        client.observe(("f1",), returning("d", c_false), refetch_on_focus=False).subscribe(lambda r: None),
        client.observe(("f2",), returning("d", c_true), stale_time=60).subscribe(lambda r: None),
        client.observe(("f3",), returning("d", c_always), stale_time=60,
                       refetch_on_focus="always").subscribe(lambda r: None),
    ]
    await settle()
    client.focus_manager.signal_focus()
    await settle()
    assert (len(c_false), len(c_true), len(c_always)) == (1, 1, 2)
    for u in unsubs:
        u()


async def test_refetch_on_reconnect_false(client: QueryClient) -> None:
    """queryObserver: refetchOnReconnect false."""
    calls: list[object] = []
    unsubscribe = client.observe(("r",), returning("d", calls), refetch_on_reconnect=False).subscribe(lambda r: None)
    await settle()
    client.online_manager.set_online(False)
    client.online_manager.set_online(True)
    await settle()
    assert len(calls) == 1
    unsubscribe()


async def test_enabling_fetches(client: QueryClient) -> None:
    """queryObserver: 'should fetch when enabled changes to true' (set_observer_options)."""
    calls: list[object] = []
    observer = client.observe(("en",), returning("d", calls), enabled=False)
    unsubscribe = observer.subscribe(lambda r: None)
    await settle()
    assert calls == []
    observer.set_observer_options(enabled=True)
    await settle()
    assert len(calls) == 1 and observer.get_current_result().data == "d"
    unsubscribe()


async def test_disabled_observer_refetch_still_fetches(client: QueryClient) -> None:
    """queryObserver: 'should be able to refetch when disabled' (refetch() ignores enabled)."""
    observer = client.observe(("dr",), returning("d"), enabled=False)
    result = await observer.refetch()
    assert result.data == "d"


async def test_error_result_flags(client: QueryClient) -> None:
    """queryObserver: result flags of a failed first fetch (isError, isLoadingError-like)."""

    async def boom(ctx: object) -> None:
        raise RuntimeError("x")

    observer = client.observe(("ef",), boom, retry=0)
    unsubscribe = observer.subscribe(lambda r: None)
    await settle()
    result = observer.get_current_result()
    assert result.is_error and not result.is_pending and result.error_update_count == 1
    assert result.failure_count == 1 and isinstance(result.failure_reason, RuntimeError)
    unsubscribe()


async def test_failure_count_during_retries(client: QueryClient, clock: FakeClock) -> None:
    """queryObserver: 'should report failureCount and failureReason while retrying'."""
    attempts = [0]

    async def flaky(ctx: object) -> str:
        attempts[0] += 1
        if attempts[0] < 3:
            raise RuntimeError(f"fail {attempts[0]}")
        return "ok"

    observer = client.observe(("fc",), flaky, retry=3, retry_delay=1)
    counts: list[int] = []
    unsubscribe = observer.subscribe(lambda r: counts.append(r.failure_count))
    await settle()
    assert observer.get_current_result().failure_count == 1
    await clock.advance(1)
    assert observer.get_current_result().failure_count == 2
    await clock.advance(1)
    result = observer.get_current_result()
    assert result.data == "ok" and result.failure_count == 0 and result.failure_reason is None
    unsubscribe()


async def test_loading_and_refetching_flags(client: QueryClient) -> None:
    """queryObserver: isLoading on the first fetch, isRefetching on later ones."""
    server = Server()
    observer = client.observe(("lf",), server.fn)
    unsubscribe = observer.subscribe(lambda r: None)
    await settle()
    assert observer.get_current_result().is_loading and not observer.get_current_result().is_refetching
    server.release("a")
    await settle()
    task = asyncio.create_task(observer.refetch())
    await settle()
    r = observer.get_current_result()
    assert r.is_refetching and not r.is_loading and r.data == "a"
    server.release("b")
    await task
    unsubscribe()


async def test_async_iteration_yields_current_then_changes(client: QueryClient) -> None:
    """queryObserver: subscribing yields results as they change (Python: ``async for``)."""
    client.set_query_data(("it",), 1)
    observer = client.observe(("it",), enabled=False)
    seen: list[object] = []

    async def consume() -> None:
        async for result in observer:
            seen.append(result.data)
            if len(seen) == 2:
                return

    task = asyncio.create_task(consume())
    await settle()
    client.set_query_data(("it",), 2)
    await asyncio.wait_for(task, 2)
    assert seen == [1, 2]
