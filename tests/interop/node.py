"""Node side of the interop tests: install the npm packages once, run ``ypeer.js`` clients.

:func:`ensure_node_modules` installs ``benchmarks/node`` (``npm ci`` from the committed lock
file) unless every dependency is already present, and *fails* (never skips) with a clear
message when node or npm is missing. :class:`NodePeer` runs one stock y-websocket client in a
subprocess and reads its JSON-line reports; :meth:`NodePeer.wait_for` waits on a condition
with a timeout (no sleeping).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

NODE_DIR = Path(__file__).resolve().parents[2] / "benchmarks" / "node"
TIMEOUT = 15.0


def _missing_packages() -> list[str]:
    deps = json.loads((NODE_DIR / "package.json").read_text())["dependencies"]
    return [name for name in deps if not (NODE_DIR / "node_modules" / name / "package.json").is_file()]


def ensure_node_modules() -> Path:
    """Install the Node packages if any is missing; return the directory. Fails the test
    (does not skip) when node/npm are unavailable or the install fails."""
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            pytest.fail(f"the interop test needs `{tool}` on PATH (Node >= 18 with npm); CI provides it")
    if not _missing_packages():
        return NODE_DIR
    cmd = ["npm", "ci" if (NODE_DIR / "package-lock.json").is_file() else "install", "--no-audit", "--no-fund"]
    proc = subprocess.run(cmd, cwd=NODE_DIR, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0 or _missing_packages():
        pytest.fail(f"`{' '.join(cmd)}` in {NODE_DIR} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return NODE_DIR


class NodePeer:
    """A stock ``yjs`` + ``y-websocket`` client in a Node subprocess (``ypeer.js``)."""

    def __init__(self, proc: asyncio.subprocess.Process, name: str):
        self.proc = proc
        self.name = name
        self.synced = False
        self.map: dict[str, Any] = {}
        self.text = ""
        self.client_id: int | None = None
        self.awareness: dict[int, Any] = {}
        self.errors: list[str] = []
        self.exited = False
        self._changed = asyncio.Condition()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, base_url: str, room: str, name: str, *, map_name: str = "root") -> NodePeer:
        proc = await asyncio.create_subprocess_exec(
            "node", str(NODE_DIR / "ypeer.js"), base_url, room, name, "--map", map_name,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=NODE_DIR,
        )
        return cls(proc, name)

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        try:
            while line := await self.proc.stdout.readline():
                ev = json.loads(line)
                kind = ev["ev"]
                if kind == "synced":
                    self.synced = True
                elif kind == "state":
                    self.map, self.text = ev["map"], ev["text"]
                elif kind == "awareness":
                    self.client_id = ev["clientID"]
                    self.awareness = {int(k): v for k, v in ev["states"].items()}
                elif kind == "error":
                    self.errors.append(ev["message"])
                async with self._changed:
                    self._changed.notify_all()
        finally:
            self.exited = True
            async with self._changed:
                self._changed.notify_all()

    async def wait_for(self, predicate: Callable[[], bool], what: str, timeout: float = TIMEOUT) -> None:
        """Wait until ``predicate()`` holds (re-checked on every report); fail after ``timeout``."""

        async def waiter() -> None:
            async with self._changed:
                await self._changed.wait_for(lambda: predicate() or self.exited)
            if not predicate():
                raise AssertionError(f"node peer {self.name} exited before: {what}; {await self._stderr()}")

        try:
            await asyncio.wait_for(waiter(), timeout)
        except TimeoutError:
            raise AssertionError(
                f"node peer {self.name}: timed out after {timeout} s waiting for {what}; "
                f"map={self.map} text={self.text!r} awareness={self.awareness} errors={self.errors}"
            ) from None

    async def _stderr(self) -> str:
        if self.proc.stderr is None:
            return ""
        with contextlib.suppress(TimeoutError):
            return (await asyncio.wait_for(self.proc.stderr.read(), 2)).decode(errors="replace")[-2000:]
        return ""

    def command(self, **cmd: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd).encode() + b"\n")

    async def exit(self) -> None:
        """Destroy the provider (its socket closes) and wait for the process to end."""
        if self.proc.returncode is None:
            with contextlib.suppress(ConnectionError):
                self.command(op="exit")
            try:
                await asyncio.wait_for(self.proc.wait(), TIMEOUT)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._reader, TIMEOUT)
