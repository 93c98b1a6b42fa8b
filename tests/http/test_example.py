"""examples/http_api.py runs, exits 0 and shows each step (it asserts its own outcome)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "http_api.py"


async def test_http_api_example(capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("http_api_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    assert await module.main() == 0

    out = capsys.readouterr().out
    assert "HTTP 304, 0 CRDT updates, same object: True" in out
    assert "after 1 refresh, 3 answers were 401" in out
    assert "409: we sent version 1" in out and "'version': 3}" in out
