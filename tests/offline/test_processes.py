"""Real processes on one channel: convergence, leader SIGKILL and takeover, restart from SQLite."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.offline.procs import Proc

pytestmark = pytest.mark.timeout(60)


async def test_three_processes_converge_survive_leader_sigkill_and_restart(tmp_path: Path) -> None:
    base = tmp_path / "chan"
    names = ["p1", "p2", "p3"]
    procs = {n: await Proc.start(n, channel="demo", base=base, db=tmp_path / f"{n}.db") for n in names}
    try:
        roles = {n: p.ready["role"] for n, p in procs.items()}
        assert sorted(roles.values()) == ["follower", "follower", "leader"], roles
        leader = next(n for n, r in roles.items() if r == "leader")

        # every process edits, concurrently, the same entity and its own one
        for n, p in procs.items():
            await p.call("write", key=["items", n], value={"by": n, "round": 1})
            await p.call("write", key=["shared", "counter", n], value=1)
        for p in procs.values():
            for n in names:
                await p.wait(["items", n], {"by": n, "round": 1})
                await p.wait(["shared", "counter", n], 1)

        await procs[leader].call("flush")  # its SQLite file holds round 1
        killed_at = time.monotonic()
        procs[leader].kill()
        await procs[leader].reap()
        survivors = [n for n in names if n != leader]

        # keep editing at once, while the survivors are still electing a new leader
        for n in survivors:
            await procs[n].call("write", key=["items", n], value={"by": n, "round": 2})
        for n in survivors:
            await procs[n].call("wait_connected", timeout=5)
        new_roles = {n: (await procs[n].call("status"))["role"] for n in survivors}
        assert sorted(new_roles.values()) == ["follower", "leader"], new_roles
        new_leader = next(n for n, r in new_roles.items() if r == "leader")
        took_over = next(e["at"] for e in procs[new_leader].events if e.get("role") == "leader")
        assert took_over - killed_at < 1.0, f"takeover took {took_over - killed_at:.3f} s"
        for n in survivors:
            for m in survivors:
                await procs[n].wait(["items", m], {"by": m, "round": 2})

        # restart the killed process from its SQLite file: it has its old state, then catches up
        procs[leader] = await Proc.start(leader, channel="demo", base=base, db=tmp_path / f"{leader}.db")
        assert procs[leader].ready["restored"] == "restored"
        assert procs[leader].ready["role"] == "follower"
        for m in survivors:  # ready means synced: no waiting needed for state before the join
            got = await procs[leader].call("wait", key=["items", m], value={"by": m, "round": 2}, timeout=0.01)
            assert got["ok"], got
        await procs[leader].call("write", key=["items", leader], value={"by": leader, "round": 3})
        for p in procs.values():
            await p.wait(["items", leader], {"by": leader, "round": 3})
        dumps = [(await p.call("dump"))["docs"] for p in procs.values()]
        assert dumps[0] == dumps[1] == dumps[2]
        assert len(dumps[0]["shared"]) == len(names)  # every process's concurrent entry survived
    finally:
        for p in procs.values():
            await p.exit()


async def test_new_process_gets_the_current_state_at_once(tmp_path: Path) -> None:
    base = tmp_path / "chan"
    a = await Proc.start("a", channel="join", base=base)
    try:
        for i in range(50):
            await a.call("write", key=["docs", str(i)], value={"i": i})
        b = await Proc.start("b", channel="join", base=base)
        try:
            got = await b.call("dump")
            assert len(got["docs"]["docs"]) == 50
        finally:
            await b.exit()
    finally:
        await a.exit()


async def test_graceful_leader_exit_hands_over(tmp_path: Path) -> None:
    base = tmp_path / "chan"
    a = await Proc.start("a", channel="hand", base=base)
    b = await Proc.start("b", channel="hand", base=base)
    try:
        assert a.ready["role"] == "leader" and b.ready["role"] == "follower"
        await a.call("write", key=["k", "x"], value="from a")
        await b.wait(["k", "x"], "from a")
        await a.exit()
        assert (await b.call("wait_connected"))["role"] == "leader"
        c = await Proc.start("c", channel="hand", base=base)
        try:
            await c.wait(["k", "x"], "from a", timeout=0.01)
        finally:
            await c.exit()
    finally:
        await a.exit()
        await b.exit()


async def test_two_processes_example_exits_zero() -> None:
    import asyncio
    import sys

    from tests.offline.procs import ROOT

    proc = await asyncio.create_subprocess_exec(sys.executable, str(ROOT / "examples" / "two_processes.py"),
                                                stdout=asyncio.subprocess.PIPE)
    out, _ = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 0, out
    assert b"converged" in out
