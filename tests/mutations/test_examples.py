"""The mutation examples run, exit 0 and check their own outcome (they assert convergence)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["offline_conflict", "long_running"])
async def test_example_runs(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert await load(name).main() == 0
    out = capsys.readouterr().out
    if name == "offline_conflict":
        assert "field conflict on 1/title (remote)" in out and "rolled back to 1" in out
    else:
        assert "none after the job finished" in out and "cancelled 2/10" in out
