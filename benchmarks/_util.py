"""Shared helpers for the benchmark scripts in this directory.

Every benchmark is a plain script that prints one JSON object on stdout. Use these helpers so
the numbers are produced the same way everywhere:

- :func:`timed` / :class:`Samples`: wall-clock timing with ``time.perf_counter`` and a
  summary (count, mean, p50, p90, p99, min, max; all in microseconds unless said otherwise);
- :class:`Stopwatch`: wall and CPU time of one block (CPU time is what to trust when the
  machine is shared: it does not count time the process spent preempted);
- :func:`rss_bytes`: resident set size of this process (psutil when installed, else
  ``/proc/self/statm``);
- :func:`machine_info`: cores, Python, pycrdt and platform, to put beside every result;
- :func:`run_json_subprocess`: run this same script (or another) in a fresh interpreter and
  parse the JSON it prints, for honest per-variant RSS;
- :func:`emit`: print the result as JSON (sorted keys, floats rounded) and return it.

Import them from a script in this directory with ``from _util import ...`` (the script's
directory is on ``sys.path`` when it runs as ``python benchmarks/<name>.py``).
"""

from __future__ import annotations

import gc
import importlib.metadata
import json
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The ``q``-quantile (0..1) of already sorted values, by linear interpolation."""
    if not sorted_values:
        return math.nan
    if len(sorted_values) == 1:
        return float(sorted_values[0])
    pos = q * (len(sorted_values) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    frac = pos - lo
    return float(sorted_values[lo] * (1 - frac) + sorted_values[hi] * frac)


class Samples:
    """Durations in seconds; :meth:`summary` reports them in microseconds."""

    def __init__(self) -> None:
        self.values: list[float] = []

    def add(self, seconds: float) -> None:
        self.values.append(seconds)

    def __len__(self) -> int:
        return len(self.values)

    def summary(self, unit: float = 1e6) -> dict[str, float]:
        """count, mean, p50, p90, p99, min, max; times multiplied by ``unit`` (1e6: µs)."""
        v = sorted(self.values)
        if not v:
            return {"count": 0}
        return {
            "count": len(v),
            "mean": sum(v) / len(v) * unit,
            "p50": percentile(v, 0.50) * unit,
            "p90": percentile(v, 0.90) * unit,
            "p99": percentile(v, 0.99) * unit,
            "min": v[0] * unit,
            "max": v[-1] * unit,
        }


@contextmanager
def timed(out: Samples) -> Iterator[None]:
    """``with timed(samples): work()`` adds the block's wall time to ``samples``."""
    t0 = time.perf_counter()
    try:
        yield
    finally:
        out.add(time.perf_counter() - t0)


class Stopwatch:
    """``with Stopwatch() as sw: work()`` then ``sw.wall`` and ``sw.cpu`` (seconds).

    ``cpu`` is this process's CPU time (``time.process_time``): unlike wall time it is not
    inflated when other processes compete for the cores, so report both on a shared machine.
    """

    wall: float = 0.0
    cpu: float = 0.0

    def __enter__(self) -> Stopwatch:
        self._c0, self._t0 = time.process_time(), time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._t0
        self.cpu = time.process_time() - self._c0


def time_once(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Run ``fn`` once; returns (seconds, result)."""
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


def ratio(a: float, b: float) -> float:
    """``a / b`` (nan when ``b`` is zero)."""
    return a / b if b else math.nan


def rss_bytes() -> int:
    """Resident set size of this process, in bytes (after a full garbage collection)."""
    gc.collect()
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except ImportError:  # pragma: no cover - psutil is in the dev and bench extras
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")


def machine_info() -> dict[str, Any]:
    """Facts to report with every result (the load average shows how busy the machine was)."""

    def version(pkg: str) -> str | None:
        try:
            return importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            return None

    return {
        "git": _git_revision(),
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "pycrdt": version("pycrdt"),
        "crdtsync": version("crdtsync"),
        "loadavg_1m": os.getloadavg()[0],
    }


def _git_revision() -> str | None:
    """``git describe --always --dirty`` of the checkout the benchmark runs from (None if unknown)."""
    try:
        proc = subprocess.run(
            ["git", "describe", "--always", "--dirty"], capture_output=True, text=True, timeout=10,
            cwd=Path(__file__).resolve().parent, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return (proc.stdout.strip() or None) if proc.returncode == 0 else None


def run_json_subprocess(args: Sequence[str], *, timeout: float = 600.0) -> Any:
    """Run ``python <args>`` in a fresh interpreter and parse the JSON object it prints last."""
    proc = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{args!r} exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    if not lines:
        raise RuntimeError(f"{args!r} printed nothing")
    return json.loads(lines[-1])


def _round(obj: Any, digits: int) -> Any:
    if isinstance(obj, float):
        if math.isnan(obj) or math.isinf(obj):
            return None
        return round(obj, digits)
    if isinstance(obj, dict):
        return {k: _round(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_round(v, digits) for v in obj]
    return obj


def emit(result: dict[str, Any], *, digits: int = 3, indent: int | None = None) -> dict[str, Any]:
    """Print ``result`` as one JSON object (floats rounded, nan/inf as null); returns it."""
    clean = _round(result, digits)
    print(json.dumps(clean, sort_keys=True, indent=indent))
    return dict(clean)
