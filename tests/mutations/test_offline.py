"""Offline: pause while offline, resume in order, the durable outbox across restarts."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import pytest

from crdtsync import FakeClock, QueryClient
from crdtsync.errors import OutboxError
from crdtsync.mutations import Outbox

from .conftest import Gate, Server, merge_fields


def edit(id_: int, **fields: Any) -> dict[str, Any]:
    return {"id": id_, "fields": fields}


async def test_offline_mutations_pause_show_and_resume_in_order(client: QueryClient, clock: FakeClock) -> None:
    order: list[int] = []
    running = 0
    overlap = False

    async def fn(v: Any, ctx: Any) -> Any:
        nonlocal running, overlap
        running += 1
        overlap = overlap or running > 1
        await clock.sleep(1)
        order.append(v["fields"]["n"])
        running -= 1
        return v

    client.set_query_data(("todos", 1), {"n": 0})
    client.online_manager.set_online(False)
    ms = [client.mutate(edit(1, n=i), mutation_fn=fn, optimistic=merge_fields) for i in range(1, 5)]
    await clock.settle()
    assert [m.state.phase for m in ms] == ["paused"] * 4
    assert client.is_mutating() == 4
    assert client.get_query_data(("todos", 1)) == {"n": 4}  # optimistic edits show while offline
    client.online_manager.set_online(True)
    for _ in range(4):
        await clock.advance(1)
    await asyncio.wait_for(asyncio.gather(*(m.result() for m in ms)), 1)
    assert order == [1, 2, 3, 4] and not overlap  # in order, one at a time (not in parallel)


async def test_going_offline_mid_queue_pauses_the_rest(client: QueryClient, gate: Gate) -> None:
    client.online_manager.set_online(False)
    ms = [client.mutate(i, mutation_fn=gate.fn) for i in range(3)]
    client.online_manager.set_online(True)
    await gate.wait_calls(1)
    client.online_manager.set_online(False)
    gate.ok()
    await ms[0].result()
    await asyncio.sleep(0)
    assert [m.state.phase for m in ms] == ["success", "paused", "paused"]
    client.online_manager.set_online(True)
    await gate.wait_calls(2)
    gate.ok()
    await gate.wait_calls(3)
    gate.ok()
    await ms[2].result()
    assert [c[0] for c in gate.calls] == [0, 1, 2]


async def test_network_mode_always_ignores_offline(client: QueryClient, gate: Gate) -> None:
    client.online_manager.set_online(False)
    client.mutate(1, mutation_fn=gate.fn, network_mode="always")
    await gate.wait_calls(1)


async def test_outbox_survives_a_restart_and_resumes_each_once_in_order(tmp_path: Path) -> None:
    path = str(tmp_path / "outbox.sqlite")
    server = Server()
    server.rows["1"] = {"title": "a", "n": 0}

    def make() -> QueryClient:
        c = QueryClient(clock=FakeClock(), rng=random.Random())
        c.set_mutation_defaults(("todos", "patch"), mutation_fn=server.patch, optimistic=merge_fields)
        return c

    first = make()
    first.set_query_data(("todos", 1), {"title": "a", "n": 0})
    assert first.use_outbox(path) == []
    first.online_manager.set_online(False)
    ms = [first.mutate(edit(1, n=i), mutation_key=("todos", "patch")) for i in range(1, 4)]
    keys = [m.idempotency_key for m in ms]
    await first.close_mutations()  # the process goes away; nothing was sent
    assert server.calls == 0

    second = make()
    second.set_query_data(("todos", 1), {"title": "a", "n": 0})
    restored = second.use_outbox(path)
    assert [m.idempotency_key for m in restored] == keys
    assert [m.state.phase for m in restored] == ["paused"] * 3
    assert second.get_query_data(("todos", 1)) == {"title": "a", "n": 3}  # optimistic edits replayed
    await second.resume_paused_mutations()
    await second.resume_paused_mutations()  # a second call finds nothing to do
    assert server.applied == keys and server.calls == 3
    assert [m.state.phase for m in restored] == ["success"] * 3
    assert len(Outbox(path)) == 0
    await second.close_mutations()


async def test_a_crash_after_the_server_applied_is_deduplicated(tmp_path: Path) -> None:
    path = str(tmp_path / "outbox.sqlite")
    server = Server()
    server.rows["1"] = {}
    first = QueryClient(clock=FakeClock())
    first.use_outbox(path)
    sent = asyncio.Event()

    async def send_then_hang(v: Any, ctx: Any) -> Any:
        await server.patch(v, ctx)  # the server applied it...
        sent.set()
        await asyncio.Event().wait()  # ...and the process dies before the answer arrives

    first.mutate(edit(1, n=1), mutation_key=("todos", "patch"), mutation_fn=send_then_hang)
    await asyncio.wait_for(sent.wait(), 1)
    await first.close_mutations()

    second = QueryClient(clock=FakeClock())
    second.set_mutation_defaults(("todos",), mutation_fn=server.patch)
    second.use_outbox(path)
    await second.resume_paused_mutations()
    assert server.calls == 2 and len(server.applied) == 1  # resent with the same key, applied once
    await second.close_mutations()


async def test_restored_mutation_without_a_registered_fn_stays_in_the_outbox(tmp_path: Path) -> None:
    path = str(tmp_path / "o.sqlite")
    first = QueryClient(clock=FakeClock())
    first.use_outbox(path)
    first.online_manager.set_online(False)
    first.mutate(1, mutation_key=("x",), mutation_fn=Gate().fn)
    await first.close_mutations()
    second = QueryClient(clock=FakeClock())
    [m] = second.use_outbox(path)
    await second.resume_paused_mutations()
    assert m.state.phase == "error" and type(m.state.error).__name__ == "MutationNotFoundError"
    await second.close_mutations()
    assert len(Outbox(path)) == 1


async def test_unserialisable_variables_are_refused_before_anything_shows(client: QueryClient, tmp_path: Path) -> None:
    client.use_outbox(str(tmp_path / "o.sqlite"))
    client.set_query_data(("todos", 1), {"title": "a"})
    with pytest.raises(OutboxError):
        client.mutate({"id": 1, "fields": {"title": "b"}, "bad": object()}, mutation_key=("k",),
                      mutation_fn=Gate().fn, optimistic=merge_fields)
    assert client.get_query_data(("todos", 1)) == {"title": "a"}
    assert client.is_mutating() == 0


def test_outbox_rejects_bad_options_and_wraps_sqlite_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        Outbox(str(tmp_path / "o.sqlite"), synchronous="SOMETIMES")  # type: ignore[arg-type]
    with pytest.raises(OutboxError):
        Outbox(str(tmp_path / "missing-dir" / "o.sqlite"))
    bad = tmp_path / "corrupt.sqlite"
    bad.write_bytes(b"not a database" * 100)
    with pytest.raises(OutboxError):
        Outbox(str(bad))


async def test_mutations_in_one_batch_commit_their_outbox_rows_once(client: QueryClient, tmp_path: Path) -> None:
    path = str(tmp_path / "o.sqlite")
    client.use_outbox(path)
    client.online_manager.set_online(False)
    reader = Outbox(path)
    with client.batch():
        for i in range(5):
            client.mutate(i, mutation_key=("k",), mutation_fn=Gate().fn)
        assert len(reader) == 0  # not committed yet: a crash here loses the whole batch, never half
    assert len(reader) == 5
    client.mutate(5, mutation_key=("k",), mutation_fn=Gate().fn)
    assert len(reader) == 6  # outside a batch: committed before mutate returns
    reader.close()
