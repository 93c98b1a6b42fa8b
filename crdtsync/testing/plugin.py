"""The crdtsync pytest plugin: fixtures and hypothesis profiles for conflict suites.

Installed with crdtsync (entry point ``pytest11: crdtsync``), so every test session gets it;
nothing to add to ``conftest.py``.

Fixtures (all function-scoped):

- ``fake_clock``: a :class:`~crdtsync.clock.FakeClock`; move time with ``await fake_clock.advance(s)``.
- ``replica``: an empty :class:`~crdtsync.replica.Replica`, closed after the test.
- ``replica_pair``: two replicas ``(a, b)`` wired to each other in memory: every committed
  transaction of one is applied to the other at once (no faults; use ``sim_network`` for those).
- ``sim_network``: a :class:`~crdtsync.testing.network.SimNetwork` with three peers
  (``"p0"``, ``"p1"``, ``"p2"``), seed 0, on ``fake_clock``. Call ``sim_network.add_peer()`` for more.
- ``relay``: a started :class:`~crdtsync.relay.Relay` on 127.0.0.1 (a free port) over an
  :class:`~crdtsync.storage.SQLiteStore` in the test's ``tmp_path``; connect to ``relay.url``.
  Stopped (rooms flushed, store closed) after the test. Needs pytest-asyncio.

Hypothesis profiles, registered when the plugin is imported:

- ``ci``: fast and reproducible; loaded by default when the environment has ``CI=true``;
- ``dev``: the default elsewhere, a little broader than ``ci``;
- ``deep``: many more examples for long runs: ``HYPOTHESIS_PROFILE=deep pytest``.

``HYPOTHESIS_PROFILE=<name>`` picks any registered profile, and hypothesis's own
``--hypothesis-profile`` option, when given, wins over both. Registering and loading are
idempotent, so importing this module twice or loading a profile again is harmless.

The plugin imports nothing heavy at import time, so a broken test helper never breaks
collection of unrelated tests.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from ..clock import FakeClock
    from ..relay import Relay
    from ..replica import Replica
    from .network import SimNetwork

PROFILES = ("ci", "dev", "deep")

# max_examples per profile; the project's own property tests scale their sizes on these too.
_EXAMPLES = {"ci": 20, "dev": 40, "deep": 1000}


def register_profiles() -> None:
    """Register the ``ci``, ``dev`` and ``deep`` hypothesis profiles (safe to call again)."""
    try:
        from hypothesis import HealthCheck, settings
    except ImportError:  # hypothesis is in the ``testing`` extra; fixtures work without it
        return
    common: dict[str, Any] = {
        "deadline": None,
        "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
    }
    settings.register_profile("ci", max_examples=_EXAMPLES["ci"], derandomize=True, database=None, **common)
    settings.register_profile("dev", max_examples=_EXAMPLES["dev"], **common)
    settings.register_profile("deep", max_examples=_EXAMPLES["deep"], **common)


def selected_profile(environ: dict[str, str] | None = None) -> str:
    """The profile name the environment asks for: ``HYPOTHESIS_PROFILE``, else ``ci`` when
    ``CI`` is true, else ``dev``."""
    env = os.environ if environ is None else environ
    name = env.get("HYPOTHESIS_PROFILE", "").strip()
    if name:
        return name
    if env.get("CI", "").strip().lower() in ("1", "true", "yes"):
        return "ci"
    return "dev"


def load_selected_profile(environ: dict[str, str] | None = None) -> str:
    """Load the profile :func:`selected_profile` names and return its name."""
    from hypothesis import settings
    from hypothesis.errors import InvalidArgument

    name = selected_profile(environ)
    try:
        settings.load_profile(name)
    except InvalidArgument as exc:
        raise pytest.UsageError(
            f"HYPOTHESIS_PROFILE={name!r} is not a registered hypothesis profile "
            f"(crdtsync registers {', '.join(PROFILES)})"
        ) from exc
    return name


register_profiles()


def pytest_configure(config: pytest.Config) -> None:
    try:
        import hypothesis  # noqa: F401
    except ImportError:
        return
    if config.getoption("hypothesis_profile", default=None):
        return  # hypothesis's own option was given: it has loaded that profile
    load_selected_profile()


def pytest_report_header(config: pytest.Config) -> str | None:
    try:
        from hypothesis import settings
    except ImportError:
        return None
    return f"crdtsync: hypothesis profile {settings.get_current_profile_name()!r}"


@pytest.fixture
def fake_clock() -> FakeClock:
    """A :class:`~crdtsync.clock.FakeClock`; time moves only with ``await fake_clock.advance(s)``."""
    from ..clock import FakeClock

    return FakeClock()


@pytest.fixture
def replica() -> Iterator[Replica]:
    """An empty :class:`~crdtsync.replica.Replica`, closed when the test ends."""
    from ..replica import Replica

    r = Replica()
    yield r
    r.close()


@pytest.fixture
def replica_pair() -> Iterator[tuple[Replica, Replica]]:
    """Two replicas that apply each other's updates immediately and reliably."""
    from .peers import connected_pair

    a, b, disconnect = connected_pair()
    yield a, b
    disconnect()
    a.close()
    b.close()


@pytest.fixture
def sim_network(fake_clock: FakeClock) -> Iterator[SimNetwork]:
    """A seeded :class:`~crdtsync.testing.network.SimNetwork` with peers p0, p1, p2."""
    from .network import SimNetwork

    net = SimNetwork(seed=0, clock=fake_clock, peers=3)
    yield net
    net.close()


# pytest-asyncio is in the dev extra, not in ``testing``: no async fixture without it.
if importlib.util.find_spec("pytest_asyncio") is not None:
    import pytest_asyncio

    @pytest_asyncio.fixture
    async def relay(tmp_path: Path) -> AsyncIterator[Relay]:
        """A real relay on loopback (free port) with a SQLite store in ``tmp_path``."""
        from ..relay import Relay, RelayConfig
        from ..storage import SQLiteStore

        server = Relay(RelayConfig(host="127.0.0.1", port=0), SQLiteStore(tmp_path / "relay.db"))
        await server.start()
        try:
            yield server
        finally:
            await server.stop()
