"""A real PostgreSQL server for the JDBC-source tests, started on 127.0.0.1 on a free port.

Debian's binaries (``make postgres`` installs them). PostgreSQL refuses to run as root, so
when the tests run as root the data directory is owned by ``postgres`` and initdb/pg_ctl run
through ``runuser -u postgres --``. If the server cannot start the test FAILS (never skips).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

PASSWORD = "cdp-test-pw"  # a throwaway server on 127.0.0.1 that lives for one test module


def _bin_dir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not found:
        pytest.fail("PostgreSQL binaries not found under /usr/lib/postgresql/*/bin: run `make postgres` "
                    "(apt-get install postgresql)", pytrace=False)
    return Path(found[-1]).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    if subprocess.run(["id", "-u", "postgres"], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "--system", "--no-create-home", "postgres"], check=True)
    return ["runuser", "-u", "postgres", "--", *cmd]


def _run(cmd: list[str], what: str, log: Path | None = None) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
        pytest.fail(f"PostgreSQL could not {what} (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}\n{tail}",
                    pytrace=False)


class Postgres:
    def __init__(self, bindir: Path, port: int):
        self.bindir, self.port = bindir, port
        self.user, self.password, self.database = "postgres", PASSWORD, "crm"

    @property
    def jdbc_url(self) -> str:
        return f"jdbc:postgresql://127.0.0.1:{self.port}/{self.database}"

    def sql(self, statement: str, database: str | None = None) -> str:
        proc = subprocess.run(
            [str(self.bindir / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user,
             "-d", database or self.database, "-v", "ON_ERROR_STOP=1", "-At", "-c", statement],
            capture_output=True, text=True, env={**os.environ, "PGPASSWORD": self.password}, timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout


@pytest.fixture(scope="module")
def postgres():
    bindir = _bin_dir()
    base = Path(tempfile.mkdtemp(prefix="cdp-pg-"))  # not under pytest's 0700 tmp: postgres must reach it
    data, sock, log, pwfile = base / "data", base / "sock", base / "server.log", base / "pw"
    sock.mkdir()
    pwfile.write_text(PASSWORD + "\n")
    os.chmod(base, 0o755)
    if os.geteuid() == 0:
        _as_postgres(["true"])  # creates the user when missing
        shutil.chown(base, "postgres")
        shutil.chown(sock, "postgres")
        shutil.chown(pwfile, "postgres")
    port = _free_port()
    try:
        _run(_as_postgres([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=scram-sha-256",
                           f"--pwfile={pwfile}", "-E", "UTF8", "--locale=C.UTF-8"]), "initialise a cluster")
        _run(_as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60",
                           "-o", f"-p {port} -h 127.0.0.1 -k {sock} -c timezone=UTC", "start"]),
             f"start on 127.0.0.1:{port}", log)
        pg = Postgres(bindir, port)
        pg.sql("CREATE DATABASE crm", database="postgres")
        yield pg
    finally:
        subprocess.run(_as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                       capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
