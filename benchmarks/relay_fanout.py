"""Relay fan-out: the crdtsync relay against pycrdt-websocket, the Node reference server and a
raw websockets broadcast server, under one workload, in one invocation.

    .venv/bin/python benchmarks/relay_fanout.py [--quick] [--indent 1]
    .venv/bin/python benchmarks/relay_fanout.py --awareness [--clients 100 --seconds 20]

Servers (each in its own subprocess, so its RSS is its own and it has a core to itself):

- ``crdtsync-memory`` / ``crdtsync-sqlite``: ``python -m crdtsync relay --store memory:`` and
  with a SQLite file (the default store); per-connection rate limit raised so the writer is
  not throttled, every other limit at its default (``max_queue`` 4096 stays in force);
- ``pycrdt-websocket``: ``pycrdt.websocket.WebsocketServer`` behind ``websockets.serve`` with a
  small channel adapter (websockets >= 14 no longer fits its old ``serve(server.serve)`` use);
- ``node``: ``@y/websocket-server`` 0.1.1 with yjs 13 (``benchmarks/node``, installed here with
  ``npm ci`` when missing);
- ``raw-websockets``: ``websockets.broadcast`` of every y-websocket Update frame to the other
  connections of the path (no CRDT, no storage): the ceiling.

Workload, per server and K (1, 10, 100; ``--quick``: 1, 10): one writer and K readers in one
room, all speaking y-websocket. The readers run in a separate process (sans-I/O websockets on
uvloop, so they are cheap) and timestamp every update; the writer (this process) embeds its
``time.monotonic_ns()`` send time in each update's map key (patched into prebuilt updates, so
building them costs nothing during the run). Phase 1: a burst of 2,000 small map edits
(``--quick``: 300) sent as fast as possible; *delivered updates/s* = K x edits / (last
delivery - first send). Phase 2: a paced load at 40 % of that server's measured capacity for
about 2 s; p50/p99 latency of both phases. Server RSS (psutil) after the run.

Printed JSON: ``results[server][K]`` and ``ratios[K]`` (crdtsync vs node, pycrdt-websocket,
raw websockets). ``--awareness``: ``--clients`` real Node y-websocket clients with awareness
on against the crdtsync relay for ``--seconds``; reports the relay's RSS and the awareness
messages it sent (its ``/metrics``) and the clients received.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from _util import emit, machine_info, percentile

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
NODE_DIR = HERE / "node"
PY = sys.executable
TS_DIGITS = 20
KEY_RE = re.compile(rb"@(\d{7}):(\d{20})")


def install_uvloop() -> str:
    try:
        import uvloop
    except ImportError:
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"


# --------------------------------------------------------------------------- lib0 / y-websocket


def var_uint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    out.append(n)
    return bytes(out)


SYNC_STEP1_EMPTY = b"\x00\x00\x01\x00"  # messageSync, SyncStep1, state vector of an empty doc
SYNC_STEP2_EMPTY = b"\x00\x01\x02\x00\x00"  # messageSync, SyncStep2, the empty update


# --------------------------------------------------------------------------- servers under test


class _Channel:
    """pycrdt ``Channel`` over a websockets >= 14 server connection (what pycrdt-websocket's
    ``WebsocketServer.serve`` needs: ``path``, ``send``, ``recv``, async iteration)."""

    def __init__(self, ws: Any):
        self._ws = ws
        self.path = ws.request.path

    def __aiter__(self) -> _Channel:
        return self

    async def __anext__(self) -> bytes:
        try:
            return await self.recv()
        except Exception:
            raise StopAsyncIteration from None

    async def send(self, message: bytes) -> None:
        await self._ws.send(message)

    async def recv(self) -> bytes:
        msg = await self._ws.recv()
        return msg if isinstance(msg, bytes) else msg.encode()


async def serve_pycrdt() -> None:
    from pycrdt.websocket import WebsocketServer
    from websockets.asyncio.server import serve

    async with WebsocketServer(log=None) as yserver:

        async def handler(ws: Any) -> None:
            await yserver.serve(_Channel(ws))

        async with serve(handler, "127.0.0.1", 0, compression=None, max_size=None) as server:
            print(json.dumps({"port": server.sockets[0].getsockname()[1]}), flush=True)
            await asyncio.Future()


async def serve_raw() -> None:
    from websockets.asyncio.server import broadcast, serve

    rooms: dict[str, set[Any]] = {}

    async def handler(ws: Any) -> None:
        room = rooms.setdefault(ws.request.path, set())
        room.add(ws)
        try:
            await ws.send(SYNC_STEP1_EMPTY)  # the "you are in" signal the readers wait for
            async for msg in ws:
                if isinstance(msg, bytes) and msg[:2] == b"\x00\x02":
                    broadcast([c for c in room if c is not ws], msg)
        finally:
            room.discard(ws)

    async with serve(handler, "127.0.0.1", 0, compression=None, max_size=None) as server:
        print(json.dumps({"port": server.sockets[0].getsockname()[1]}), flush=True)
        await asyncio.Future()


# --------------------------------------------------------------------------- readers (subprocess)


async def reader_main() -> None:
    """K y-websocket readers in this process, driven by JSON commands on stdin:
    ``connect`` (url, k) -> ``{"ready": k}``; ``phase`` (lo, hi) starts counting updates with
    sequence numbers in [lo, hi); ``wait`` (timeout) -> delivery stats of that phase."""
    from websockets.client import ClientProtocol
    from websockets.frames import Frame, Opcode
    from websockets.http11 import Response
    from websockets.uri import parse_uri

    loop = asyncio.get_running_loop()
    state: dict[str, Any] = {"lo": 0, "hi": 0, "want": 0, "got": 0, "records": [], "done": asyncio.Event()}
    ready = {"n": 0, "want": 0, "event": asyncio.Event()}

    class Reader(asyncio.Protocol):
        def __init__(self, uri: str):
            self.ws = ClientProtocol(parse_uri(uri), max_size=None)
            self.joined = False
            self.transport: Any = None

        def connection_made(self, transport: Any) -> None:
            self.transport = transport
            self.ws.send_request(self.ws.connect())
            self._flush()

        def _flush(self) -> None:
            for data in self.ws.data_to_send():
                if data:
                    self.transport.write(data)

        def data_received(self, data: bytes) -> None:
            self.ws.receive_data(data)
            now = time.monotonic_ns()
            for ev in self.ws.events_received():
                if isinstance(ev, Frame):
                    if ev.opcode is Opcode.BINARY:
                        self.on_message(bytes(ev.data), now)
                elif isinstance(ev, Response):
                    self.ws.send_binary(SYNC_STEP1_EMPTY)
            self._flush()

        def on_message(self, msg: bytes, now: int) -> None:
            if msg[:2] == b"\x00\x02":
                m = KEY_RE.search(msg)
                if m is None:
                    return
                seq = int(m.group(1))
                if state["lo"] <= seq < state["hi"]:
                    state["records"].append((seq, int(m.group(2)), now))
                    state["got"] += 1
                    if state["got"] >= state["want"]:
                        state["done"].set()
            elif msg[:2] == b"\x00\x00":
                self.ws.send_binary(SYNC_STEP2_EMPTY)
                if not self.joined:
                    self.joined = True
                    ready["n"] += 1
                    if ready["n"] >= ready["want"]:
                        ready["event"].set()

    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    readers: list[Reader] = []
    while line := await stdin.readline():
        cmd = json.loads(line)
        op = cmd["op"]
        if op == "connect":
            host, port, path = cmd["host"], cmd["port"], cmd["path"]
            ready["want"] = cmd["k"]
            for _ in range(cmd["k"]):
                r = Reader(f"ws://{host}:{port}{path}")
                await loop.create_connection(lambda r=r: r, host, port)
                readers.append(r)
            await asyncio.wait_for(ready["event"].wait(), 30)
            out = {"ready": ready["n"]}
        elif op == "phase":
            state.update(lo=cmd["lo"], hi=cmd["hi"], want=(cmd["hi"] - cmd["lo"]) * len(readers), got=0, records=[])
            state["done"] = asyncio.Event()
            out = {"ok": True}
        elif op == "wait":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(state["done"].wait(), cmd["limit"])
            recs = state["records"]
            lat = sorted((r[2] - r[1]) / 1e3 for r in recs)  # µs
            out = {
                "delivered": len(recs),
                "expected": state["want"],
                "last_recv_ns": max((r[2] for r in recs), default=0),
                "p50_us": percentile(lat, 0.5),
                "p99_us": percentile(lat, 0.99),
                "max_us": lat[-1] if lat else None,
            }
        elif op == "close":
            for r in readers:
                r.transport.close()
            out = {"ok": True}
        else:
            out = {"error": op}
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()


class ReaderPool:
    def __init__(self, proc: asyncio.subprocess.Process):
        self.proc = proc

    @classmethod
    async def start(cls) -> ReaderPool:
        proc = await asyncio.create_subprocess_exec(
            PY, __file__, "--readers", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
        )
        return cls(proc)

    async def call(self, timeout: float = 120, **cmd: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(cmd).encode() + b"\n")
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not line:
            raise RuntimeError("reader process died")
        result: dict[str, Any] = json.loads(line)
        return result

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            await self.call(op="close", timeout=5)
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), 5)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


# --------------------------------------------------------------------------- writer


def build_updates(lo: int, hi: int) -> list[bytearray]:
    """y-websocket Update frames setting map key ``@<seq>:<20 digit ts>`` (ts patched at send)."""
    from pycrdt import Doc, Map

    doc: Doc = Doc()
    m = doc.get("m", type=Map)
    out: list[bytes] = []
    sub = doc.observe(lambda ev: out.append(bytes(ev.update)))
    for seq in range(lo, hi):
        m[f"@{seq:07d}:{0:0{TS_DIGITS}d}"] = True
    doc.unobserve(sub)
    frames = []
    for seq, upd in zip(range(lo, hi), out, strict=True):
        frame = bytearray(b"\x00\x02" + var_uint(len(upd)) + upd)
        frames.append(frame)
        assert frame.find(f"@{seq:07d}:".encode()) >= 0
    return frames


def stamp(frame: bytearray) -> bytes:
    at = frame.index(b":", frame.index(b"@")) + 1
    frame[at : at + TS_DIGITS] = b"%020d" % time.monotonic_ns()
    return bytes(frame)


class Writer:
    def __init__(self, ws: Any):
        self.ws = ws
        self._drain = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, url: str) -> Writer:
        from websockets.asyncio.client import connect

        ws = await connect(url, compression=None, max_size=None)
        self = cls(ws)
        await ws.send(SYNC_STEP1_EMPTY)
        return self

    async def _read(self) -> None:
        with contextlib.suppress(Exception):
            async for msg in self.ws:
                if isinstance(msg, bytes) and msg[:2] == b"\x00\x00":
                    # answer with what we have: nothing yet at the start (we only send updates)
                    await self.ws.send(SYNC_STEP2_EMPTY)

    async def burst(self, frames: list[bytearray]) -> int:
        first = time.monotonic_ns()
        for f in frames:
            await self.ws.send(stamp(f))
        return first

    async def paced(self, frames: list[bytearray], rate: float) -> int:
        first = time.monotonic_ns()
        start = time.monotonic()
        for i, f in enumerate(frames):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await self.ws.send(stamp(f))
        return first

    async def close(self) -> None:
        await self.ws.close()
        self._drain.cancel()


# --------------------------------------------------------------------------- orchestration


def ensure_node_modules() -> None:
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise SystemExit("relay_fanout needs node and npm on PATH")
    deps = json.loads((NODE_DIR / "package.json").read_text())["dependencies"]
    if all((NODE_DIR / "node_modules" / d / "package.json").is_file() for d in deps):
        return
    cmd = ["npm", "ci" if (NODE_DIR / "package-lock.json").is_file() else "install", "--no-audit", "--no-fund"]
    subprocess.run(cmd, cwd=NODE_DIR, check=True, stdout=subprocess.DEVNULL)


class Server:
    def __init__(self, name: str, proc: asyncio.subprocess.Process, port: int):
        self.name, self.proc, self.port = name, proc, port
        self.drain: asyncio.Task[None] | None = None

    @classmethod
    async def start(cls, name: str, tmp: Path, relay_args: list[str]) -> Server:
        stderr_port = name.startswith("crdtsync")
        if name == "crdtsync-memory":
            args = [PY, "-m", "crdtsync", "relay", "--port", "0", "--store", "memory:", *relay_args]
        elif name == "crdtsync-sqlite":
            args = [PY, "-m", "crdtsync", "relay", "--port", "0", "--store", str(tmp / "relay.sqlite3"), *relay_args]
        elif name == "pycrdt-websocket":
            args = [PY, __file__, "--serve", "pycrdt"]
        elif name == "raw-websockets":
            args = [PY, __file__, "--serve", "raw"]
        elif name == "node":
            args = ["node", str(NODE_DIR / "ref_server.js"), "0"]
        else:
            raise ValueError(name)
        proc = await asyncio.create_subprocess_exec(
            *args,
            cwd=ROOT,
            stdout=asyncio.subprocess.DEVNULL if stderr_port else asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE if stderr_port else asyncio.subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        stream = proc.stderr if stderr_port else proc.stdout
        assert stream is not None
        while True:
            line = await asyncio.wait_for(stream.readline(), 30)
            if not line:
                raise RuntimeError(f"{name} exited before listening")
            with contextlib.suppress(ValueError):
                rec = json.loads(line)
                if "port" in rec:
                    port = int(rec["port"])
                    break
                if rec.get("msg") == "relay listening":
                    port = int(rec["url"].rsplit(":", 1)[1])
                    break
        server = cls(name, proc, port)
        if stderr_port:  # keep draining the relay's logs so it never blocks on a full pipe
            server.drain = asyncio.create_task(_drain(stream))
        return server

    def rss_mib(self) -> float:
        import psutil

        return float(psutil.Process(self.proc.pid).memory_info().rss) / (1 << 20)

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 20)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.readline():
        pass


async def run_case(server: Server, k: int, edits: int, paced_seconds: float, seq0: int) -> dict[str, Any]:
    room = f"/bench-{k}-{seq0}"
    pool = await ReaderPool.start()
    writer: Writer | None = None
    try:
        await pool.call(op="connect", host="127.0.0.1", port=server.port, path=room, k=k)
        writer = await Writer.open(f"ws://127.0.0.1:{server.port}{room}")
        burst_frames = build_updates(seq0, seq0 + edits)
        await pool.call(op="phase", lo=seq0, hi=seq0 + edits)
        first = await writer.burst(burst_frames)
        b = await pool.call(op="wait", limit=60)
        secs = max(1e-9, (b["last_recv_ns"] - first) / 1e9)
        delivered_per_s = b["delivered"] / secs
        result: dict[str, Any] = {
            "burst": {
                "edits": edits,
                "delivered": b["delivered"],
                "expected": b["expected"],
                "seconds": secs,
                "delivered_per_s": delivered_per_s,
                "p50_ms": b["p50_us"] / 1e3,
                "p99_ms": b["p99_us"] / 1e3,
            }
        }
        # paced: 40 % of this server's measured capacity (edits/s = delivered/s / K)
        rate = max(10.0, 0.4 * delivered_per_s / k)
        n = max(20, min(int(rate * paced_seconds), 10_000))
        lo = seq0 + edits
        paced_frames = build_updates(lo, lo + n)
        await pool.call(op="phase", lo=lo, hi=lo + n)
        first = await writer.paced(paced_frames, rate)
        p = await pool.call(op="wait", limit=60)
        result["paced"] = {
            "rate_edits_per_s": rate,
            "edits": n,
            "delivered": p["delivered"],
            "expected": p["expected"],
            "p50_ms": p["p50_us"] / 1e3,
            "p99_ms": p["p99_us"] / 1e3,
        }
        result["server_rss_mib"] = server.rss_mib()
        return result
    finally:
        if writer is not None:
            await writer.close()
        await pool.stop()


def _ratios(results: dict[str, dict[int, Any]], ks: list[int]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k in ks:
        row: dict[str, Any] = {}
        for mine in ("crdtsync-memory", "crdtsync-sqlite"):
            r = results.get(mine, {}).get(k)
            if not r or "burst" not in r:
                continue
            for other in ("node", "pycrdt-websocket", "raw-websockets"):
                o = results.get(other, {}).get(k)
                if not o or "burst" not in o:
                    continue
                row[f"{mine}/{other}.throughput"] = r["burst"]["delivered_per_s"] / o["burst"]["delivered_per_s"]
                row[f"{mine}/{other}.paced_p99"] = r["paced"]["p99_ms"] / max(1e-9, o["paced"]["p99_ms"])
        out[str(k)] = row
    return out


async def fanout(args: argparse.Namespace) -> dict[str, Any]:
    ensure_node_modules()
    ks = [1, 10] if args.quick else [1, 10, 100]
    edits = 300 if args.quick else 2000
    paced_seconds = 0.5 if args.quick else 2.0
    servers = args.servers.split(",")
    relay_args = ["--rate", "1000000", "--burst", "1000000", *args.relay_arg]
    results: dict[str, dict[int, Any]] = {}
    seq = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name in servers:
            results[name] = {}
            server = await Server.start(name, Path(tmp), relay_args)
            try:
                for k in ks:
                    try:
                        results[name][k] = await run_case(server, k, edits, paced_seconds, seq)
                    except Exception as exc:  # report and go on with the other servers
                        results[name][k] = {"error": f"{type(exc).__name__}: {exc}"}
                    seq += 20_000
                    print(f"{name} K={k}: {json.dumps(results[name][k])}", file=sys.stderr, flush=True)
            finally:
                await server.stop()
    return {
        "benchmark": "relay_fanout",
        "quick": args.quick,
        "workload": {"ks": ks, "burst_edits": edits, "paced_seconds": paced_seconds, "paced_load": 0.4},
        "relay_args": relay_args,
        "results": {name: {str(k): v for k, v in r.items()} for name, r in results.items()},
        "ratios": _ratios(results, ks),
        "machine": machine_info(),
    }


async def awareness(args: argparse.Namespace) -> dict[str, Any]:
    ensure_node_modules()
    with tempfile.TemporaryDirectory() as tmp:
        server = await Server.start(args.awareness_store, Path(tmp), list(args.relay_arg))
        try:
            proc = await asyncio.create_subprocess_exec(
                "node", str(NODE_DIR / "awareness_clients.js"), f"ws://127.0.0.1:{server.port}", "presence",
                str(args.clients), str(args.seconds),
                stdout=asyncio.subprocess.PIPE, cwd=NODE_DIR,
            )
            rss_max = 0.0
            assert proc.stdout is not None
            report: dict[str, Any] = {}
            while line := await asyncio.wait_for(proc.stdout.readline(), args.seconds + 60):
                rec = json.loads(line)
                rss_max = max(rss_max, server.rss_mib())
                if rec.get("ev") == "done":
                    report = rec
            await proc.wait()
            rss_end = server.rss_mib()
            metrics = urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=10).read().decode()
        finally:
            await server.stop()

    def metric(name: str) -> float | None:
        m = re.search(rf"^{name} (\S+)$", metrics, re.M)
        return float(m.group(1)) if m else None

    return {
        "benchmark": "relay_fanout.awareness",
        "server": args.awareness_store,
        "clients": args.clients,
        "seconds": args.seconds,
        "relay_rss_mib_max": max(rss_max, rss_end),
        "relay_rss_mib_end": rss_end,
        "relay_awareness_sent": metric("crdtsync_awareness_sent_total"),
        "relay_awareness_received": metric("crdtsync_awareness_received_total"),
        "clients_report": report,
        "target_rss_mib": 300,
        "machine": machine_info(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="K = 1, 10 and 300 edits (under a minute)")
    ap.add_argument("--indent", type=int, default=None)
    ap.add_argument(
        "--servers", default="crdtsync-memory,crdtsync-sqlite,pycrdt-websocket,node,raw-websockets",
        help="comma-separated subset to run",
    )
    ap.add_argument("--relay-arg", action="append", default=[], help="extra flag for the crdtsync relay (repeat)")
    ap.add_argument("--awareness", action="store_true", help="the 100-Node-client awareness scenario instead")
    ap.add_argument("--awareness-store", default="crdtsync-memory", choices=["crdtsync-memory", "crdtsync-sqlite"])
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--serve", choices=["pycrdt", "raw"], help=argparse.SUPPRESS)
    ap.add_argument("--readers", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve == "pycrdt":
        asyncio.run(serve_pycrdt())  # plain asyncio: how pycrdt-websocket is normally run
        return
    if args.serve == "raw":
        install_uvloop()
        asyncio.run(serve_raw())
        return
    if args.readers:
        install_uvloop()
        asyncio.run(reader_main())
        return
    loop_kind = install_uvloop()
    result = asyncio.run(awareness(args) if args.awareness else fanout(args))
    result["driver_loop"] = loop_kind
    emit(result, indent=args.indent)


if __name__ == "__main__":
    main()
