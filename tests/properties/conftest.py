"""Long property runs: no per-test timeout under the ``deep`` hypothesis profile."""

from __future__ import annotations

import pytest
from hypothesis import settings


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if settings.get_current_profile_name() == "deep":
        for item in items:
            if item.path.parent.name == "properties":
                item.add_marker(pytest.mark.timeout(0))
