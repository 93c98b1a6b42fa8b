"""Drive ``worker.py`` subprocesses: send a command, read the reply line with a timeout."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

WORKER = Path(__file__).with_name("worker.py")
ROOT = Path(__file__).resolve().parents[2]
LINE_TIMEOUT = 10.0


class Proc:
    """One worker process on a channel."""

    def __init__(self, proc: asyncio.subprocess.Process, name: str):
        self.proc = proc
        self.name = name
        self.events: list[dict[str, Any]] = []
        self.ready: dict[str, Any] = {}
        self._ids = itertools.count(1)
        self._event_waiters: list[tuple[str, asyncio.Future[dict[str, Any]]]] = []

    @classmethod
    async def start(cls, name: str, *, channel: str, base: Path, db: Path | None = None) -> Proc:
        args = [sys.executable, str(WORKER), "--channel", channel, "--base", str(base)]
        if db is not None:
            args += ["--db", str(db)]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = await asyncio.create_subprocess_exec(
            *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=env
        )
        p = cls(proc, name)
        p.ready = await p._read_until(lambda m: m.get("event") == "ready", timeout=20)
        return p

    @property
    def pid(self) -> int:
        return self.proc.pid

    async def _read_line(self, timeout: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not line:
            raise EOFError(f"worker {self.name} exited (code {self.proc.returncode})")
        msg: dict[str, Any] = json.loads(line)
        if "event" in msg:
            self.events.append(msg)
        return msg

    async def _read_until(self, pred: Any, timeout: float = LINE_TIMEOUT) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                msg = await self._read_line(timeout)
                if pred(msg):
                    return msg

    async def call(self, op: str, timeout: float = LINE_TIMEOUT, **kw: Any) -> dict[str, Any]:
        """Send a command; return its reply (events read meanwhile are kept in ``events``)."""
        cid = next(self._ids)
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps({"id": cid, "op": op, **kw}) + "\n").encode())
        await self.proc.stdin.drain()
        reply = await self._read_until(lambda m: m.get("id") == cid, timeout)
        if "error" in reply:
            raise AssertionError(f"worker {self.name}: {reply['error']}")
        return reply

    async def wait(self, key: list[Any], value: Any, timeout: float = 5.0) -> None:
        reply = await self.call("wait", key=key, value=value, timeout=timeout, **{})
        assert reply["ok"], f"{self.name}: {key} is {reply['value']!r}, expected {value!r}"

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)

    async def exit(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(EOFError, ConnectionError, TimeoutError):
                await self.call("exit")
        await self.reap()

    async def reap(self) -> int:
        try:
            return await asyncio.wait_for(self.proc.wait(), 10)
        except TimeoutError:
            self.proc.kill()
            return await self.proc.wait()
