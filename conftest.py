"""Fixtures shared by every test folder: a throwaway PostgreSQL server and history targets.

``postgres_server`` starts a real PostgreSQL cluster once per test session (in a temporary
directory, as an unprivileged user when the tests run as root, listening on a Unix socket only)
and removes it at the end. ``history_target`` gives each test an empty history, once per store:
a DuckDB file and a fresh PostgreSQL database, so the same test checks both.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def _postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    """A PostgreSQL cluster in ``folder``, reachable through a Unix socket in the same folder."""

    def __init__(self, bindir: Path, folder: Path, user: str | None) -> None:
        self.bindir, self.folder, self.user = bindir, folder, user
        self.data = folder / "data"
        self.port = _free_port()
        self._names = itertools.count(1)

    def _run(self, *args: str) -> None:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self.user:
            command = ["runuser", "-u", self.user, "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        if self.user:
            shutil.chown(self.folder, self.user)
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")
        options = (f"-k {self.folder} -p {self.port} -c listen_addresses='' -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=50")
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.folder / "server.log"), "-w",
                  "-t", "60", "start")

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@/{database}?host={self.folder}&port={self.port}"

    def new_database(self) -> str:
        import psycopg

        name = f"history_{os.getpid()}_{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as con:
            con.execute(f"CREATE DATABASE {name}")
        return name

    def drop_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as con:
            con.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    pytest.importorskip("psycopg", reason="psycopg is not installed (uv sync installs leadscore[history])")
    bindir = _postgres_bin()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed: apt-get install -y postgresql (.ci/run does this in CI)")
    user = None
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        user = "postgres"
        try:
            import pwd

            pwd.getpwnam(user)
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run the server as")
    folder = Path(tempfile.mkdtemp(prefix="leadscore-pg-"))
    server = PostgresServer(bindir, folder, user)
    try:
        server.start()
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as err:
        log = (folder / "server.log").read_text() if (folder / "server.log").exists() else ""
        shutil.rmtree(folder, ignore_errors=True)
        stderr = getattr(err, "stderr", b"") or b""
        pytest.fail(f"could not start PostgreSQL: {stderr.decode(errors='replace')[-500:]} {log[-500:]}")
    yield server
    server.stop()


@pytest.fixture(params=["duckdb", "postgresql"])
def history_target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty history: a DuckDB file path, or the URL of a new PostgreSQL database."""
    if request.param == "duckdb":
        pytest.importorskip("duckdb", reason="duckdb is not installed (uv sync installs leadscore[history])")
        yield str(tmp_path / "history.duckdb")
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = server.new_database()
    try:
        yield server.url(name)
    finally:
        # Connections a test left open (a killed child) must not block the drop.
        for _ in range(3):
            try:
                server.drop_database(name)
                break
            except Exception:
                time.sleep(0.5)
