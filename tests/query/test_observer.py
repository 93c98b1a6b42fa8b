"""QueryObserver: notifications only on change, select, batching, timers, focus and reconnect."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from crdtsync import FakeClock, QueryClient
from crdtsync.query import QueryObserverResult
from tests.query.conftest import FakeAPI, wait_for

FIELDS = ("title", "done", "owner")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(FIELDS), st.sampled_from(["a", "b", "c"])), min_size=1, max_size=15))
def test_select_observer_is_notified_exactly_when_its_selection_changes(edits: list[tuple[str, str]]) -> None:
    async def run() -> None:
        client = QueryClient(clock=FakeClock())
        client.set_query_data(("todos", 1), {"title": "a", "done": "a", "owner": "a"})
        obs = client.observe(("todos", 1), select=lambda t: t["title"], enabled=False)
        seen: list[Any] = []
        stop = obs.subscribe(lambda r: seen.append(r.data))
        expected: list[str] = []
        current = {"title": "a", "done": "a", "owner": "a"}
        for field, value in edits:
            if current[field] != value and field == "title":
                expected.append(value)
            current = {**current, field: value}
            client.set_query_data(("todos", 1), current)
        assert seen == expected
        stop()
        await client.close()

    asyncio.run(run())


async def test_structural_sharing_keeps_unchanged_parts_identical(client: QueryClient) -> None:
    client.set_query_data(("d",), {"a": {"x": 1}, "b": {"y": 1}})
    obs = client.observe(("d",), enabled=False)
    results: list[QueryObserverResult] = []
    stop = obs.subscribe(results.append)
    first = obs.get_current_result().data
    client.set_query_data(("d",), {"a": {"x": 1}, "b": {"y": 2}})
    assert len(results) == 1
    assert results[0].data["a"] is first["a"]
    assert results[0].data["b"] is not first["b"]
    client.set_query_data(("d",), {"a": {"x": 1}, "b": {"y": 2}})
    assert len(results) == 1  # equal write: no update, no notification
    stop()


async def test_batch_coalesces_notifications(client: QueryClient) -> None:
    client.set_query_data(("b", 1), 0)
    client.set_query_data(("b", 2), 0)
    obs1 = client.observe(("b", 1), enabled=False)
    obs2 = client.observe(("b", 2), enabled=False)
    n1: list[Any] = []
    n2: list[Any] = []
    s1, s2 = obs1.subscribe(lambda r: n1.append(r.data)), obs2.subscribe(lambda r: n2.append(r.data))
    with client.batch():
        for i in range(1, 6):
            client.set_query_data(("b", 1), i)
        client.set_query_data(("b", 2), 42)
    assert n1 == [5] and n2 == [42]
    s1()
    s2()


async def test_remote_update_notifies_only_affected_observers(client: QueryClient) -> None:
    peer = QueryClient()
    for i in range(5):
        client.set_query_data(("todos", i), {"n": i})
    peer.replica.apply_update("todos", client.replica.get_update("todos"))
    notified: dict[int, int] = dict.fromkeys(range(5), 0)
    stops = []
    for i in range(5):
        obs = client.observe(("todos", i), enabled=False)
        stops.append(obs.subscribe(lambda r, i=i: notified.__setitem__(i, notified[i] + 1)))
    sv = client.replica.state_vector("todos")
    peer.set_query_data(("todos", 3), {"n": 33})
    client.replica.apply_update("todos", peer.replica.get_update("todos", sv))
    assert notified == {0: 0, 1: 0, 2: 0, 3: 1, 4: 0}
    assert client.get_query_data(("todos", 3)) == {"n": 33}
    for s in stops:
        s()


async def test_mount_fetches_and_async_iteration(client: QueryClient, api: FakeAPI, clock: FakeClock) -> None:
    obs = client.observe(("m",), api.fetch)
    statuses: list[tuple[str, str]] = []
    async for result in obs:
        statuses.append((result.status, result.fetch_status))
        if result.is_success:
            break
    assert statuses[0] == ("pending", "fetching") or statuses[0] == ("pending", "idle")
    assert statuses[-1] == ("success", "idle")
    assert api.calls == [("m",)]


async def test_disabled_observer_does_not_fetch_until_refetch(client: QueryClient, api: FakeAPI,
                                                              clock: FakeClock) -> None:
    obs = client.observe(("dis",), api.fetch, enabled=False)
    stop = obs.subscribe(lambda r: None)
    await clock.advance(100)
    assert api.calls == []
    result = await obs.refetch()
    assert result.data == {"key": ["dis"]}
    stop()


async def test_stale_timer_flips_is_stale_and_notifies(client: QueryClient, api: FakeAPI, clock: FakeClock) -> None:
    obs = client.observe(("s",), api.fetch, stale_time=10)
    results: list[QueryObserverResult] = []
    stop = obs.subscribe(results.append)
    await wait_for(lambda: obs.get_current_result().is_success, clock)
    assert not obs.get_current_result().is_stale
    await clock.advance(9)
    assert not obs.get_current_result().is_stale
    await clock.advance(2)
    assert obs.get_current_result().is_stale and results[-1].is_stale
    stop()


async def test_gc_removes_query_after_last_observer_leaves(client: QueryClient, api: FakeAPI,
                                                           clock: FakeClock) -> None:
    obs = client.observe(("gc",), api.fetch, gc_time=30)
    stop = obs.subscribe(lambda r: None)
    await wait_for(lambda: obs.get_current_result().is_success, clock)
    stop()
    await clock.advance(29)
    assert client.get_query_state(("gc",)) is not None
    again = client.observe(("gc",), api.fetch, gc_time=30)  # a new observer cancels gc
    stop2 = again.subscribe(lambda r: None)
    await clock.advance(100)
    assert client.get_query_state(("gc",)) is not None
    stop2()
    await clock.advance(31)
    assert client.get_query_state(("gc",)) is None
    assert clock.pending_timers() == 0


async def test_refetch_interval_pauses_while_offline(client: QueryClient, api: FakeAPI, clock: FakeClock) -> None:
    obs = client.observe(("iv",), api.fetch, refetch_interval=5, stale_time=100)
    stop = obs.subscribe(lambda r: None)
    await wait_for(lambda: len(api.calls) == 1, clock)
    await clock.advance(5.01)
    await clock.advance(5)
    assert len(api.calls) == 3
    client.online_manager.set_online(False)
    await clock.advance(20)
    assert len(api.calls) == 3
    client.online_manager.set_online(True)
    await clock.advance(5.01)
    assert len(api.calls) >= 4
    stop()


async def test_refetch_interval_as_function_of_data(client: QueryClient, clock: FakeClock) -> None:
    polls = 0

    async def job(ctx: Any) -> Any:
        nonlocal polls
        polls += 1
        return {"done": polls >= 3}

    obs = client.observe(("job",), job, refetch_interval=lambda data, q: False if data and data["done"] else 1.0)
    stop = obs.subscribe(lambda r: None)
    await clock.advance(1.01)
    await clock.advance(1.01)
    await clock.advance(10)
    assert polls == 3
    stop()


async def test_focus_and_reconnect_refetch_stale_queries_once(client: QueryClient, api: FakeAPI,
                                                              clock: FakeClock) -> None:
    obs = client.observe(("fx",), api.fetch, stale_time=10)
    obs2 = client.observe(("fx",), api.fetch, stale_time=10)
    no_focus = client.observe(("nf",), api.fetch, stale_time=10, refetch_on_focus=False)
    stops = [obs.subscribe(lambda r: None), obs2.subscribe(lambda r: None), no_focus.subscribe(lambda r: None)]
    await wait_for(lambda: len(api.calls) == 2, clock)
    client.focus_manager.signal_focus()
    await clock.settle()
    assert len(api.calls) == 2  # fresh: no refetch
    await clock.advance(11)
    client.focus_manager.signal_focus()
    await clock.settle()
    assert api.calls.count(("fx",)) == 2 and api.calls.count(("nf",)) == 1  # once, not once per observer
    await clock.advance(11)
    client.online_manager.set_online(False)
    client.online_manager.set_online(True)
    await clock.settle()
    assert api.calls.count(("fx",)) == 3 and api.calls.count(("nf",)) == 2
    for s in stops:
        s()


async def test_placeholder_data(client: QueryClient, api: FakeAPI, clock: FakeClock) -> None:
    api.gate = asyncio.Event()
    obs = client.observe(("ph",), api.fetch, placeholder_data={"loading": True})
    stop = obs.subscribe(lambda r: None)
    r = obs.get_current_result()
    assert r.is_placeholder_data and r.data == {"loading": True} and r.status == "success"
    assert client.get_query_data(("ph",)) is None  # placeholders are never stored
    api.gate.set()
    await wait_for(lambda: not obs.get_current_result().is_placeholder_data, clock)
    assert obs.get_current_result().data == {"key": ["ph"]}
    stop()


async def test_error_state_in_observer(client: QueryClient, clock: FakeClock) -> None:
    async def fail(ctx: Any) -> Any:
        raise RuntimeError("nope")

    obs = client.observe(("err",), fail, retry=1, retry_delay=1)
    stop = obs.subscribe(lambda r: None)
    await clock.advance(0.5)
    assert obs.get_current_result().failure_count == 1 and obs.get_current_result().is_fetching
    await clock.advance(1)
    r = obs.get_current_result()
    assert r.is_error and isinstance(r.error, RuntimeError) and r.failure_count == 2 and r.error_update_count == 1
    stop()


async def test_get_query_data_is_current_inside_an_earlier_watcher(client: QueryClient) -> None:
    """A replica watcher registered before the query's own sees fresh data through the client."""
    seen: list[Any] = []
    client.replica.watch("early", ("1",), lambda origin: seen.append(client.get_query_data(("early", 1))))
    client.set_query_data(("early", 1), {"n": 1})
    peer = QueryClient()
    peer.replica.apply_update("early", client.replica.get_update("early"))
    sv = client.replica.state_vector("early")
    peer.set_query_data(("early", 1), {"n": 2})
    client.replica.apply_update("early", peer.replica.get_update("early", sv))
    assert seen == [{"n": 1}, {"n": 2}]


async def test_turning_throttle_off_still_delivers_the_trailing_change(client: QueryClient, clock: FakeClock) -> None:
    client.set_query_data(("th",), 0)
    obs = client.observe(("th",), enabled=False, throttle=1.0)
    seen: list[Any] = []
    stop = obs.subscribe(lambda r: seen.append(r.data))
    client.set_query_data(("th",), 1)
    client.set_query_data(("th",), 2)
    obs.set_observer_options(throttle=None)
    await clock.advance(5)
    assert seen == [1, 2]
    stop()


async def test_enabling_a_mounted_observer_fetches(client: QueryClient, api: FakeAPI, clock: FakeClock) -> None:
    obs = client.observe(("en",), api.fetch, enabled=False)
    stop = obs.subscribe(lambda r: None)
    await clock.settle()
    assert api.calls == []
    obs.set_observer_options(enabled=True)
    await wait_for(lambda: obs.get_current_result().is_success, clock)
    assert api.calls == [("en",)]
    stop()
