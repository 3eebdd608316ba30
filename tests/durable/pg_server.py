"""A throwaway PostgreSQL server for the tests and the durability benchmark.

``initdb`` in a temporary directory, ``postgres`` on a free local port, trust
authentication, stopped (and the directory removed) at the end. PostgreSQL
refuses to run as root, so as root the server runs as the ``postgres`` user
(Debian's package creates it). The binaries come from ``$PLAIT_PG_BIN``,
else the newest ``/usr/lib/postgresql/*/bin``, else ``PATH``.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

__all__ = ["PostgresServer", "find_binaries", "unavailable"]


def find_binaries() -> Path | None:
    if os.environ.get("PLAIT_PG_BIN"):
        return Path(os.environ["PLAIT_PG_BIN"])
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def unavailable() -> str | None:
    """Why a server cannot be started here (None: it can)."""
    try:
        import psycopg  # noqa: F401
        import psycopg_pool  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install -e '.[postgres]')"
    if find_binaries() is None:
        return "no PostgreSQL binaries (apt-get install postgresql, or set PLAIT_PG_BIN)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' user to run the server as"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """``with PostgresServer() as server: server.url``.

    ``fsync=False`` (tests) trades crash safety of the server for speed;
    ``fsync=True`` keeps it, with ``synchronous_commit=off`` (a commit does not
    wait for its WAL flush: what SQLite's WAL mode with ``synchronous=NORMAL``
    does), for the benchmark.
    """

    def __init__(self, *, fsync: bool = False):
        self.bin = find_binaries()
        self.fsync = fsync
        self.dir = Path(tempfile.mkdtemp(prefix="plait-pg-"))
        self.port = _free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _cmd(self, *args: str) -> list[str]:
        cmd = [str(self.bin / args[0]), *args[1:]]
        return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd

    def start(self) -> PostgresServer:
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres")
        data = self.dir / "data"
        subprocess.run(self._cmd("initdb", "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
                                 "--no-sync"), check=True, capture_output=True, timeout=120)
        options = f"-p {self.port} -h 127.0.0.1 -k {self.dir} -c max_connections=200"
        options += " -c synchronous_commit=off"
        if not self.fsync:
            options += " -c fsync=off -c full_page_writes=off"
        subprocess.run(self._cmd("pg_ctl", "-D", str(data), "-o", options, "-l", str(self.dir / "log"), "-w",
                                 "-t", "60", "start"), check=True, capture_output=True, timeout=90)
        return self

    def stop(self) -> None:
        data = self.dir / "data"
        if (data / "postmaster.pid").exists():
            subprocess.run(self._cmd("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop"),
                           capture_output=True, timeout=60)
        shutil.rmtree(self.dir, ignore_errors=True)

    def fresh_schema(self) -> str:
        """A URL whose tables live in a new, empty schema (one per test, so tests do not see each other)."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {name}")
        return f"{self.url}?options=-csearch_path%3D{name}"

    def __enter__(self) -> PostgresServer:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
