"""A real S3-compatible server for the activation tests: moto's standalone server.

``moto_server`` runs as a subprocess on a free port on 127.0.0.1 (plain HTTP). Spark
writes to it through s3a and the tests read back with boto3. :meth:`MotoServer.pause`
stops the process (SIGSTOP) without losing its in-memory buckets, so a test can make the
server unreachable mid-export and then let it carry on.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest

MOTO = Path(sys.executable).parent / "moto_server"

# Fail fast against a stopped server: one attempt, short timeouts (s3a and boto3 alike).
FAST_FAIL_HADOOP = {
    "fs.s3a.attempts.maximum": 1,
    "fs.s3a.retry.limit": 1,
    "fs.s3a.retry.interval": "100ms",
    "fs.s3a.retry.throttle.limit": 1,
    "fs.s3a.connection.establish.timeout": "2s",
    "fs.s3a.connection.timeout": "3s",
    "fs.s3a.connection.request.timeout": "5s",
    "fs.s3a.connection.acquisition.timeout": "3s",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MotoServer:
    def __init__(self, proc: subprocess.Popen, port: int):
        self.proc = proc
        self.port = port
        self.endpoint = f"http://127.0.0.1:{port}"

    def client(self):
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3", endpoint_url=self.endpoint, region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
        )

    def new_bucket(self) -> str:
        name = f"drops-{uuid.uuid4().hex[:10]}"
        self.client().create_bucket(Bucket=name)
        return name

    def pause(self) -> None:
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.proc.pid, signal.SIGCONT)

    @contextmanager
    def paused(self):
        self.pause()
        try:
            yield
        finally:
            self.resume()


def _wait_ready(endpoint: str, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"moto_server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("moto_server did not start in time")


@pytest.fixture(scope="module")
def moto_server(tmp_path_factory):
    """A moto S3 server on 127.0.0.1:<free port>, with test credentials in the environment."""
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    mp = pytest.MonkeyPatch()
    # Fake keys for boto3 and, via per-bucket s3a settings, for Spark; never real ones.
    mp.setenv("AWS_ACCESS_KEY_ID", "testing")
    mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    mp.delenv("AWS_SESSION_TOKEN", raising=False)
    mp.delenv("AWS_PROFILE", raising=False)
    mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(MOTO), "-H", "127.0.0.1", "-p", str(port)], stdout=out, stderr=subprocess.STDOUT)
    server = MotoServer(proc, port)
    try:
        _wait_ready(server.endpoint, proc)
        yield server
    finally:
        server.resume()  # a paused process ignores SIGTERM until continued
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        mp.undo()
