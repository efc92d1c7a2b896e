"""A real Spark standalone cluster (one master, one worker) on 127.0.0.1 for tests.

pip's pyspark ships ``bin/spark-class`` but not ``sbin/start-master.sh``, so the
daemons are started directly with spark-class and stopped by killing their groups.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import pyspark

SPARK_HOME = Path(pyspark.__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(predicate, timeout: float, what: str, logs: list[Path]) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    tail = "\n".join(p.read_text(errors="replace")[-3000:] for p in logs if p.exists())
    raise RuntimeError(f"standalone cluster: {what} not ready after {timeout}s\n{tail}")


@contextmanager
def standalone_cluster(workdir: Path, cores: int = 2, memory: str = "3g"):
    """Yield the master URL of a fresh master + worker; both are stopped afterwards."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    url = f"spark://127.0.0.1:{port}"
    env = {**os.environ, "SPARK_HOME": str(SPARK_HOME), "SPARK_LOCAL_IP": "127.0.0.1"}
    env.pop("PYSPARK_GATEWAY_PORT", None)
    spark_class = str(SPARK_HOME / "bin" / "spark-class")
    master_log, worker_log = workdir / "master.log", workdir / "worker.log"
    procs = []
    try:
        with open(master_log, "wb") as out:
            procs.append(
                subprocess.Popen(
                    [spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                     "--port", str(port), "--webui-port", str(free_port())],
                    env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                )
            )
        _wait_for(lambda: "Starting Spark master" in master_log.read_text(errors="replace")
                  and "I have been elected leader" in master_log.read_text(errors="replace"),
                  90, "master", [master_log])
        with open(worker_log, "wb") as out:
            procs.append(
                subprocess.Popen(
                    [spark_class, "org.apache.spark.deploy.worker.Worker", url, "--host", "127.0.0.1",
                     "--cores", str(cores), "--memory", memory, "--webui-port", str(free_port()),
                     "--work-dir", str(workdir / "work")],
                    env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                )
            )
        _wait_for(lambda: "Successfully registered with master" in worker_log.read_text(errors="replace"),
                  90, "worker registration", [master_log, worker_log])
        yield url
    finally:
        for p in reversed(procs):
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
