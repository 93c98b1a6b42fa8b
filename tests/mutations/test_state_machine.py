"""A hypothesis state machine over mutate, succeed, fail, conflict, refetch, offline, online,
crash-and-restart (with and without the server having applied the in-flight mutation).

Checks after every step:
- the cache shows, per field, the last pending mutation's value, else the last value the
  client learned from the server (a fetch or an acknowledged mutation);
- the server never applied a mutation twice (it deduplicates on the idempotency key, and the
  client never sends two different keys for one mutation), and every acknowledged mutation is
  applied;
and at the end, once everything is sent, that every mutation that did not fail was applied
exactly once, in the order it was made.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from crdtsync import FakeClock, QueryClient
from crdtsync.errors import ClientError, VersionConflictError
from crdtsync.values import MISSING

KEY = ("items", 1)
FIELDS = ("a", "b")


class Machine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.tmp = tempfile.TemporaryDirectory()
        self.path = str(Path(self.tmp.name) / "outbox.sqlite")
        self.server: dict[str, Any] = {}
        self.applied: list[str] = []  # idempotency keys, in the order the server applied them
        self.server_calls = 0
        self.inflight: dict[str, asyncio.Future[Any]] = {}
        self.pending: list[tuple[str, dict[str, Any]]] = []  # model: unsettled mutations, in order
        self.base: dict[str, Any] = {}  # model: what the client last learned from the server
        self.acked: list[str] = []
        self.failed: set[str] = set()
        self.made: list[str] = []
        self.online = True
        self.client = self._new_client()
        self.call(lambda: self.client.use_outbox(self.path))

    # -- plumbing ----------------------------------------------------------------------------
    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def call(self, fn: Any) -> Any:
        """Run a synchronous client call inside the loop (mutate needs a running loop)."""

        async def inside() -> Any:
            return fn()

        return self.run(inside())

    def settle(self) -> None:
        self.run(self.clock.settle(60))

    async def _patch(self, v: Any, ctx: Any) -> Any:
        self.server_calls += 1
        fut = self.loop.create_future()
        self.inflight[ctx.idempotency_key] = fut
        try:
            return await fut
        finally:
            self.inflight.pop(ctx.idempotency_key, None)

    def _apply_on_server(self, key: str) -> None:
        if key in self.applied:
            return
        self.applied.append(key)
        fields = next(f for k, f in self.pending if k == key)
        self.server.update(fields)

    def _new_client(self) -> QueryClient:
        self.clock = FakeClock()
        c = QueryClient(clock=self.clock, rng=random.Random(len(self.made)))
        c.set_mutation_defaults(("items", "patch"), mutation_fn=self._patch, scope="items",
                                optimistic=lambda tx, v: tx.merge(KEY, v),
                                resolve_conflict=lambda conflict: conflict.variables,
                                max_conflict_retries=1000)
        c.online_manager.set_online(self.online)
        return c

    def _current(self) -> tuple[str, asyncio.Future[Any]] | None:
        live = [(k, f) for k, f in self.inflight.items() if not f.done()]
        assert len(live) <= 1, "a scope ran two mutations at once"
        return live[0] if live else None

    # -- rules -------------------------------------------------------------------------------
    @rule(field=st.sampled_from(FIELDS), value=st.integers(0, 3))
    def mutate(self, field: str, value: int) -> None:
        m = self.call(lambda: self.client.mutate({field: value}, mutation_key=("items", "patch")))
        self.pending.append((m.idempotency_key, {field: value}))
        self.made.append(m.idempotency_key)
        self.settle()

    @precondition(lambda self: self.inflight)
    @rule()
    def succeed(self) -> None:
        cur = self._current()
        if cur is None:
            return
        key, fut = cur
        self._apply_on_server(key)
        fut.set_result(dict(self.server))
        self.settle()
        fields = next(f for k, f in self.pending if k == key)
        self.pending = [p for p in self.pending if p[0] != key]
        self.base.update(fields)
        self.acked.append(key)

    @precondition(lambda self: self.inflight)
    @rule()
    def fail(self) -> None:
        cur = self._current()
        if cur is None:
            return
        key, fut = cur
        if key in self.applied:  # the server already has it (crash after apply): it cannot fail now
            return
        fut.set_exception(ClientError("rejected", status=422))
        self.settle()
        self.pending = [p for p in self.pending if p[0] != key]
        self.failed.add(key)

    @precondition(lambda self: self.inflight)
    @rule()
    def conflict(self) -> None:
        cur = self._current()
        if cur is None:
            return
        if cur[0] in self.applied:  # the server already has it: it answers with success later
            return
        cur[1].set_exception(VersionConflictError(server_value=dict(self.server)))
        self.settle()  # resolved with the same variables and sent again

    @rule()
    def refetch(self) -> None:
        async def fetch(ctx: Any) -> Any:
            return dict(self.server)

        self.run(self.client.fetch_query(KEY, fetch, stale_time=0, network_mode="always"))
        self.settle()
        self.base = dict(self.server)

    @rule()
    def go_offline(self) -> None:
        self.online = False
        self.call(lambda: self.client.online_manager.set_online(False))
        self.settle()

    @rule()
    def come_online(self) -> None:
        self.online = True
        self.call(lambda: self.client.online_manager.set_online(True))
        self.settle()

    @rule(applied_first=st.booleans())
    def crash_and_restart(self, applied_first: bool) -> None:
        cur = self._current()
        if applied_first and cur is not None:
            self._apply_on_server(cur[0])  # the server applied it; the answer is lost in the crash
        self.run(self.client.close_mutations())
        self.client.replica.close()
        self.inflight.clear()
        self.client = self._new_client()

        async def fetch(ctx: Any) -> Any:
            return dict(self.server)

        # the app restores its cache (here: fetches), then the outbox replays pending mutations
        self.run(self.client.fetch_query(KEY, fetch, network_mode="always"))
        self.base = dict(self.server)
        restored = self.call(lambda: self.client.use_outbox(self.path))
        assert [m.idempotency_key for m in restored] == [k for k, _ in self.pending]
        if self.online:
            self.loop.create_task(self.client.resume_paused_mutations())
        self.settle()

    # -- checks ------------------------------------------------------------------------------
    @invariant()
    def cache_matches_model(self) -> None:
        expected: dict[str, Any] = dict(self.base)
        for _, fields in self.pending:
            expected.update(fields)
        shown = self.client.get_query_data(KEY)
        shown = {} if shown is None or shown is MISSING else shown
        assert {f: shown.get(f) for f in FIELDS if f in shown or f in expected} == {
            f: expected.get(f) for f in FIELDS if f in shown or f in expected}

    @invariant()
    def nothing_acknowledged_is_lost_or_doubled(self) -> None:
        assert len(self.applied) == len(set(self.applied))
        assert set(self.acked) <= set(self.applied)

    def teardown(self) -> None:
        try:
            self.come_online()
            if any(m.state.is_paused for m in self.client.mutation_cache.get_all()):
                self.loop.create_task(self.client.resume_paused_mutations())
                self.settle()
            for _ in range(len(self.pending) + 1):
                if self._current() is not None:
                    self.succeed()
            assert self.pending == []
            expected_order = [k for k in self.made if k not in self.failed]
            assert self.applied == expected_order  # each non-failed mutation once, in order
            self.run(self.client.close_mutations())
        finally:
            self.client.replica.close()
            leftovers = asyncio.all_tasks(self.loop)
            for task in leftovers:
                task.cancel()
            if leftovers:
                self.run(asyncio.gather(*leftovers, return_exceptions=True))
            self.loop.close()
            self.tmp.cleanup()


Machine.TestCase.settings = settings(max_examples=60, stateful_step_count=25, deadline=None)
TestMutationMachine = Machine.TestCase
