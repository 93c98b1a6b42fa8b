"""Latency and throughput between processes: the local channel vs the same traffic via a relay.

Topology, the same for both transports (three processes on this machine):

    writer process ──► hub ──► reader process
                       │
    local:  the hub is a third process, the channel leader (Unix socket, crdtsync.offline)
    relay:  the hub is the real crdtsync relay (websocket on loopback, native protocol /v1),
            writer and reader connect with SyncProvider

Phase 1 (latency): the writer overwrites one key at ``--rate`` updates/s for ``--seconds``;
each value carries ``time.monotonic()`` at the write (a system-wide clock on Linux), and the
reader records receive time minus write time for every update. Phase 2 (throughput): the
writer writes ``--burst`` updates as fast as it can; updates/s = burst / (last receive -
first write).

Prints one JSON object. ``--quick`` (CI smoke) runs the same phases, smaller, in well under
20 s. Target: local p99 under 5 ms at 1,000 updates/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import Samples, emit, machine_info

from crdtsync.offline import LocalChannel
from crdtsync.replica import Replica

KEY = ("bench", "k")
DOC = "bench"


async def join(mode: str, addr: str, replica: Replica) -> Any:
    """Connect ``replica`` to the hub; returns an object with an async ``close()``."""
    if mode == "local":
        name, base = addr.split("|", 1)
        ch = LocalChannel(name, replica, base_dir=base)
        await ch.start()
        await ch.wait_ready(10)
        return ch
    from crdtsync.sync.provider import SyncProvider

    p = SyncProvider(replica, addr)
    await p.start()
    p.subscribe(DOC)
    await asyncio.wait_for(p.wait_synced(DOC), 10)
    return p


async def reader(mode: str, addr: str, n_paced: int, n_total: int) -> None:
    replica = Replica()
    replica.write(KEY, {"i": -1, "t": 0.0})
    lat = Samples()
    done = asyncio.get_running_loop().create_future()
    first_burst_t: list[float] = []
    seen = [0]

    def on_update(doc_id: str, update: bytes, origin: object) -> None:
        now = time.monotonic()
        v = replica.read(KEY)
        i = int(v["i"])
        if i < 0:
            return
        seen[0] += 1
        if i < n_paced:
            lat.add(now - v["t"])
        elif not first_burst_t:
            first_burst_t.append(v["t0"])
        if i == n_total - 1 and not done.done():
            done.set_result(now)

    link = await join(mode, addr, replica)
    replica.on_update(on_update)
    print("ready", flush=True)
    end = await asyncio.wait_for(done, 120)
    burst = n_total - n_paced
    out = {
        "latency_us": lat.summary(),
        "received": seen[0],
        "burst_updates_per_s": burst / (end - first_burst_t[0]) if first_burst_t else None,
    }
    print(json.dumps(out), flush=True)
    await link.close()


async def writer(mode: str, addr: str, n_paced: int, n_total: int, rate: float) -> None:
    replica = Replica()
    link = await join(mode, addr, replica)
    print("ready", flush=True)
    start = time.monotonic()
    for i in range(n_paced):
        due = start + i / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)  # pacing the load, not synchronising
        replica.write(KEY, {"i": i, "t": time.monotonic()})
    await asyncio.sleep(0.2)  # let the paced phase drain before the burst
    t0 = time.monotonic()
    for i in range(n_paced, n_total):
        replica.write(KEY, {"i": i, "t": time.monotonic(), "t0": t0})
        if i % 200 == 0:
            await asyncio.sleep(0)  # let the transport send
    if mode == "relay":
        await asyncio.wait_for(link.wait_acked(), 60)
    await asyncio.sleep(0.5)
    await link.close()


def spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE, text=True)


def expect_line(p: subprocess.Popen[str], want: str | None = None) -> str:
    assert p.stdout is not None
    line = p.stdout.readline()
    if not line or (want is not None and line.strip() != want):
        raise SystemExit(f"child failed: {line!r}")
    return line


async def scenario(mode: str, n_paced: int, burst: int, rate: float) -> dict[str, Any]:
    n_total = n_paced + burst
    with tempfile.TemporaryDirectory(prefix="crdtsync-bench-") as base:
        hub: Any
        if mode == "local":
            addr = f"bench-{os.getpid()}|{base}"
            hub = LocalChannel(addr.split("|")[0], Replica(), base_dir=base)  # the leader, in this process
            await hub.start()
            await hub.wait_ready(10)
        else:
            from crdtsync.relay import Relay, RelayConfig
            from crdtsync.storage import MemoryStore

            # the relay's per-connection rate limit (2,000/s, burst 4,000 by default) would drop
            # the burst phase; this measures transport cost, so lift it
            hub = Relay(RelayConfig(port=0, rate=1e9, burst=10**9), MemoryStore())
            await hub.start()
            addr = f"{hub.url}/v1"
        # the hub runs in this process's event loop, so the children are driven from threads
        r = spawn("--child", "reader", mode, addr, str(n_paced), str(n_total))
        await asyncio.to_thread(expect_line, r, "ready")
        w = spawn("--child", "writer", mode, addr, str(n_paced), str(n_total), str(rate))
        await asyncio.to_thread(expect_line, w, "ready")
        result = json.loads(await asyncio.to_thread(expect_line, r))
        await asyncio.to_thread(w.wait, 60)
        await asyncio.to_thread(r.wait, 60)
        if mode == "local":
            await hub.close()
        else:
            await hub.stop()
    if result["received"] < n_paced // 2:
        raise SystemExit(f"{mode}: reader saw only {result['received']} updates")
    return {"rate_per_s": rate, "paced_updates": n_paced, "burst_updates": burst, **result}


async def main_async(quick: bool, rate: float, seconds: float, burst: int) -> dict[str, Any]:
    if quick:
        seconds, burst = min(seconds, 2.0), min(burst, 2000)
    n_paced = int(rate * seconds)
    local = await scenario("local", n_paced, burst, rate)
    relay = await scenario("relay", n_paced, burst, rate)
    return {
        "benchmark": "local_sync",
        "quick": quick,
        "topology": "writer process -> hub -> reader process (hub: channel leader process | crdtsync relay)",
        "relay_rate_limit": "lifted for the run (RelayConfig rate=1e9)",
        "local": local,
        "relay": relay,
        "local_p99_target_us": 5000,
        "local_p99_meets_target": local["latency_us"]["p99"] < 5000,
        "machine": machine_info(),
    }


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        role, mode, addr, n_paced, n_total = sys.argv[2:7]
        if role == "reader":
            asyncio.run(reader(mode, addr, int(n_paced), int(n_total)))
        else:
            asyncio.run(writer(mode, addr, int(n_paced), int(n_total), float(sys.argv[7])))
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rate", type=float, default=1000.0)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--burst", type=int, default=20000)
    ap.add_argument("--indent", type=int, default=None)
    args = ap.parse_args()
    emit(asyncio.run(main_async(args.quick, args.rate, args.seconds, args.burst)), indent=args.indent)


if __name__ == "__main__":
    main()
