"""A real PostgreSQL for tests: one server per test session, one fresh database per test.

`postgres_server` (session) runs Debian's `initdb` and `postgres` (the newest under
/usr/lib/postgresql/*/bin, or on PATH) in a temporary directory on 127.0.0.1 and a free port,
with password authentication. PostgreSQL refuses to run as root, so when the tests run as root
(CI does) the server runs as the unprivileged user `nobody`, owning its data directory. The
server is stopped by PID at the end of the session, and dies with the test process (parent
death signal) if that is killed.

`postgres_url` (function) is the URL of an empty database made for the test (dropped after it);
`postgres_schema_url` is a fresh, empty schema (as its search_path) in a database shared by the
session: what tikvops sees is an empty database, made in milliseconds.
Without PostgreSQL the tests that use these fixtures are skipped, except in CI (env `CI` set):
there `.ci/run` installs Debian's `postgresql` package, so a missing binary or a server that
does not start is a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import glob
import itertools
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import pytest

ADMIN = "tikvops"
_PR_SET_PDEATHSIG = 1


def _missing(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; in CI .ci/run installs Debian's `postgresql` package")
    pytest.skip(f"{reason}; run `apt-get install -y --no-install-recommends postgresql`")


def postgres_bindir() -> Path | None:
    """The directory holding initdb and postgres: Debian's newest, else the one on PATH."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: (
            int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0
        ),
    )
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGQUIT)


@dataclass
class PostgresServer:
    """A running PostgreSQL: `url(dbname)` gives a URL with the admin's password."""

    bindir: Path
    root: Path
    port: int
    password: str
    process: subprocess.Popen[bytes] | None = None
    user: str | None = None
    durable: bool = False  # fsync on (benchmarks); tests need only survive a killed server
    _names: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "postgres.log"

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{ADMIN}:{quote(self.password)}@127.0.0.1:{self.port}/{dbname}"

    def log_tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-3000:]
        except OSError:
            return "(no log)"

    def _run_kwargs(self) -> dict[str, object]:
        if self.user is None:
            return {}
        entry = pwd.getpwnam(self.user)
        return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}

    def init(self) -> None:
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        self._chown(pwfile)
        result = subprocess.run(
            [
                str(self.bindir / "initdb"),
                "-D",
                str(self.datadir),
                "-U",
                ADMIN,
                f"--pwfile={pwfile}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
            capture_output=True,
            check=False,
            cwd=self.root,
            **self._run_kwargs(),  # type: ignore[call-overload]
        )
        pwfile.unlink()
        if result.returncode != 0:
            raise RuntimeError(
                f"initdb failed ({result.returncode}): {result.stderr.decode(errors='replace')}"
            )

    def start(self) -> None:
        self.port = _free_port()
        self._spawn()
        self.wait_ready()

    def _spawn(self) -> None:
        """Start the postmaster. Call it from the main thread: the parent-death signal is tied
        to the thread that forked (a worker thread ending would stop the server)."""
        log = self.log.open("ab")
        self._chown(self.log)
        try:
            self.process = subprocess.Popen(
                [
                    str(self.bindir / "postgres"),
                    "-D",
                    str(self.datadir),
                    "-p",
                    str(self.port),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    "unix_socket_directories=",
                    "-c",
                    "max_connections=300",
                    # Only an OS crash needs fsync; a killed server keeps every commit.
                    *([] if self.durable else ["-c", "fsync=off", "-c", "full_page_writes=off"]),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.root,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - prctl only, before exec
                **self._run_kwargs(),  # type: ignore[call-overload]
            )
        finally:
            log.close()

    def wait_ready(self, timeout: float = 30.0) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"postgres exited ({self.process.returncode}):\n{self.log_tail()}"
                )
            try:
                with psycopg.connect(self.url(), connect_timeout=2):
                    return
            except psycopg.OperationalError as exc:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"postgres did not accept connections in {timeout:g} s ({exc}):\n"
                        f"{self.log_tail()}"
                    ) from exc
                time.sleep(0.1)

    def stop(self, *, mode: str = "fast") -> None:
        """Stop the server: `fast` (SIGINT, clients cut, clean shutdown) or `immediate`
        (SIGQUIT, like a crash: recovery at the next start)."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGINT if mode == "fast" else signal.SIGQUIT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def restart(self, *, mode: str = "fast") -> None:
        """Stop and start again on the same port (clients reconnect to the same URL)."""
        self.stop(mode=mode)
        self._spawn()
        self.wait_ready()

    async def restart_async(self, *, mode: str = "fast", down_for: float = 0.0) -> None:
        """`restart` from a test's event loop without blocking it: `down_for` seconds with no
        server in between."""
        await asyncio.to_thread(self.stop, mode=mode)
        await asyncio.sleep(down_for)
        self._spawn()  # on the loop's (main) thread, see _spawn
        await asyncio.to_thread(self.wait_ready)

    def create_database(self, template: str = "template0") -> str:
        """A new empty database; returns its name."""
        import psycopg

        name = f"t{os.getpid()}_{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE {template}')
        return name

    def drop_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _chown(self, path: Path) -> None:
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(path, entry.pw_uid, entry.pw_gid)


def _start_server(*, durable: bool = False) -> PostgresServer:
    bindir = postgres_bindir()
    if bindir is None or not (bindir / "postgres").exists():
        _missing("PostgreSQL's initdb/postgres binaries are not installed")
        raise AssertionError("unreachable")
    try:
        import psycopg  # noqa: F401
    except ImportError:  # pragma: no cover - a dependency of the package
        _missing("psycopg is not installed")
    root = Path(tempfile.mkdtemp(prefix="tikvops-pg-"))
    server = PostgresServer(
        bindir=bindir, root=root, port=0, password=secrets.token_urlsafe(18), durable=durable
    )
    if os.geteuid() == 0:
        # postgres refuses to run as root: run it as `nobody`, owning its directory.
        server.user = "nobody"
        entry = pwd.getpwnam(server.user)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    try:
        server.init()
        server.start()
    except Exception as exc:
        server.stop(mode="immediate")
        shutil.rmtree(root, ignore_errors=True)
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL could not be started in CI: {exc}")
        pytest.skip(f"PostgreSQL could not be started here: {exc}")
    return server


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL for the whole session (skipped without it outside CI)."""
    server = _start_server()
    try:
        yield server
    finally:
        server.stop()
        with contextlib.suppress(OSError):
            shutil.rmtree(server.root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """The URL (with its password) of an empty database made for this test."""
    yield from _database(postgres_server, "template0")


@pytest.fixture(scope="session")
def postgres_shared_database(postgres_server: PostgresServer) -> str:
    """One database for the session's schema-per-test fixtures."""
    return postgres_server.create_database()


@pytest.fixture
def postgres_schema_url(
    postgres_server: PostgresServer, postgres_shared_database: str
) -> Iterator[str]:
    """The URL of an empty schema made for this test in the session's shared database (its
    `search_path`), so tikvops sees an empty database. Faster than a database per test: a
    new database copies the catalogs (~0.6 s here), a schema is created in milliseconds."""
    import psycopg

    schema = f"t{os.getpid()}_{next(postgres_server._names)}"
    admin = postgres_server.url(postgres_shared_database)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{admin}?options=-csearch_path%3D{schema}"
    finally:
        if postgres_server.process is not None and postgres_server.process.poll() is None:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def _database(server: PostgresServer, template: str) -> Iterator[str]:
    name = server.create_database(template=template)
    try:
        yield server.url(name)
    finally:
        # A test that restarted the server leaves it running on the same port.
        if server.process is not None and server.process.poll() is None:
            server.drop_database(name)
