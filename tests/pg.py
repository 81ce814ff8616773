"""A PostgreSQL server of the test's own on loopback (Debian's binaries): started, stopped and restarted at will.

The fault suite restarts the database under running daemons, so it cannot share the server ``.ci/run`` starts.
Runs ``initdb``/``pg_ctl`` as the ``postgres`` user when the tests run as root (PostgreSQL refuses root).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest


def postgres_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
    if not found:
        msg = ("PostgreSQL server binaries are missing: .ci/run installs Debian's postgresql package "
               "(scripts/ci-postgres.sh)")
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return Path(found[-1])


class PostgresServer:
    def __init__(self, port: int) -> None:
        self.bin = postgres_bin()
        # not under pytest's tmp_path: that is private to root and the server runs as ``postgres``
        self.home = Path(tempfile.mkdtemp(prefix="relayer-test-pg-"))
        self.home.chmod(0o755)
        self.dir = self.home / "data"
        self.port = port
        self._as_postgres = os.geteuid() == 0

    def _run(self, *args: str) -> None:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if self._as_postgres:
            cmd = ["su", "postgres", "-c", " ".join(f"'{a}'" for a in cmd)]
        done = subprocess.run(cmd, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed ({done.returncode}): {done.stderr.strip()[-1000:]}")

    def init(self) -> PostgresServer:
        self.dir.mkdir()
        if self._as_postgres:
            shutil.chown(self.dir, "postgres")
        self._run("initdb", "-D", str(self.dir), "-A", "trust", "-U", "postgres")
        return self

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.dir), "-l", str(self.dir / "server.log"), "-w",
                  "-o", f"-p {self.port} -k /tmp -c listen_addresses=127.0.0.1 -c max_connections=200", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.dir), "-m", mode, "-w", "stop")

    def destroy(self) -> None:
        """Stop at once (if running) and delete the data."""
        with contextlib.suppress(RuntimeError):
            self.stop("immediate")
        shutil.rmtree(self.home, ignore_errors=True)

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def new_database(self) -> str:
        """A fresh, empty database on this server; its URL."""
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"
