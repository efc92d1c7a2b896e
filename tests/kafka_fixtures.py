"""A real Kafka broker (KRaft, one node) on 127.0.0.1 on free ports, for the Kafka stream tests.

No Docker, no tarball: ``tests/kafka/pom.xml`` declares the broker (``org.apache.kafka:kafka_2.13``
4.1.0) and a logger from Maven Central; Maven copies them with their dependencies into
``tests/kafka/target/lib`` (``make kafka-broker``, part of ``make test``; this fixture does the
same when the folder is missing or older than the POM). The node is both controller and broker
with a static one-voter quorum, so one ``StorageTool format`` and one JVM are all it takes.
If the jars cannot be resolved or the broker does not start, the tests FAIL (never skip) with
the reason and the tail of the broker's log.
"""

from __future__ import annotations

import base64
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

KAFKA_DIR = Path(__file__).resolve().parent / "kafka"
LIB = KAFKA_DIR / "target" / "lib"
RESOLVED = LIB / ".resolved"  # written last, like the Makefile's stamp: a half-copied folder is never used
READY = "Kafka Server started"  # KafkaRaftServer's log line once both roles serve requests
START_TIMEOUT_S = 90


def _fail(message: str) -> None:
    pytest.fail(message, pytrace=False)


def broker_jars() -> Path:
    """``tests/kafka/target/lib``, resolved from Maven Central first when missing or stale."""
    if RESOLVED.exists() and RESOLVED.stat().st_mtime >= (KAFKA_DIR / "pom.xml").stat().st_mtime:
        return LIB
    mvn = shutil.which("mvn")
    if mvn is None:
        _fail("Maven (mvn) is needed to resolve the Kafka broker jars of tests/kafka/pom.xml: apt-get install maven")
    tmp = LIB.with_name("lib.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    proc = subprocess.run([mvn, "-q", "-B", "-f", str(KAFKA_DIR / "pom.xml"), "dependency:copy-dependencies",
                           f"-DoutputDirectory={tmp}"], capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        _fail(f"could not resolve the Kafka broker jars (tests/kafka/pom.xml) from Maven Central "
              f"(mvn exit {proc.returncode}):\n{(proc.stdout + proc.stderr).strip()[-3000:]}")
    shutil.rmtree(LIB, ignore_errors=True)
    tmp.rename(LIB)
    RESOLVED.touch()
    return LIB


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:  # held open together, so the n ports differ
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _server_properties(port: int, controller_port: int, data: Path) -> str:
    return "\n".join([
        "process.roles=broker,controller",
        "node.id=1",
        f"controller.quorum.voters=1@127.0.0.1:{controller_port}",
        f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
        "controller.listener.names=CONTROLLER",
        "inter.broker.listener.name=PLAINTEXT",
        "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        f"log.dirs={data}",
        # Topics are created on first write, with two partitions so lineage shows more than one.
        "auto.create.topics.enable=true",
        "num.partitions=2",
        # One node: every internal topic has one replica.
        "offsets.topic.replication.factor=1",
        "offsets.topic.num.partitions=1",
        "transaction.state.log.replication.factor=1",
        "transaction.state.log.min.isr=1",
        "share.coordinator.state.topic.replication.factor=1",
        "share.coordinator.state.topic.min.isr=1",
        "group.initial.rebalance.delay.ms=0",
        "",
    ])


class KafkaBroker:
    """One KRaft node under ``root``; ``bootstrap`` is ``127.0.0.1:<port>``."""

    def __init__(self, root: Path):
        self.root = root
        self.log = root / "broker.log"
        self.process: subprocess.Popen | None = None
        port, controller_port = _free_ports(2)
        self.bootstrap = f"127.0.0.1:{port}"
        self.properties = root / "server.properties"
        self.properties.write_text(_server_properties(port, controller_port, root / "data"), encoding="utf-8")

    def start(self, lib: Path) -> None:
        java = shutil.which("java")
        if java is None:
            _fail("java is needed to run the Kafka broker (Java 17, as for Spark)")
        classpath = str(lib / "*")
        cluster_id = _cluster_id()
        fmt = subprocess.run([java, "-cp", classpath, "kafka.tools.StorageTool", "format", "-t", cluster_id,
                              "-c", str(self.properties)], capture_output=True, text=True, timeout=120)
        if fmt.returncode != 0:
            _fail(f"Kafka StorageTool format failed (exit {fmt.returncode}):\n{(fmt.stdout + fmt.stderr)[-3000:]}")
        with open(self.log, "wb") as out:
            # A small serial-GC heap: the broker carries a few dozen records and shares 2 cores with Spark.
            self.process = subprocess.Popen([java, "-Xms64m", "-Xmx384m", "-XX:+UseSerialGC", "-cp", classpath,
                                             "kafka.Kafka", str(self.properties)],
                                            stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                _fail(f"the Kafka broker exited with {self.process.returncode} while starting on {self.bootstrap}; "
                      f"log {self.log}:\n{self._tail()}")
            if READY in self.log.read_text(errors="replace") and self._accepts():
                return
            time.sleep(0.3)
        self.stop()
        _fail(f"the Kafka broker did not start on {self.bootstrap} within {START_TIMEOUT_S} s; log:\n{self._tail()}")

    def _accepts(self) -> bool:
        host, port = self.bootstrap.split(":")
        with socket.socket() as s:
            s.settimeout(1)
            return s.connect_ex((host, int(port))) == 0

    def _tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else "(no log)"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # a controlled shutdown: the broker flushes and exits
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def _close_cached_producers(spark) -> None:
    """Close the producers Spark's Kafka writer keeps for reuse (10 minutes by default): once the
    broker is gone they would log a reconnect warning every second through the rest of the suite."""
    pool = spark._jvm.java.lang.Class.forName("org.apache.spark.sql.kafka010.producer.InternalKafkaProducerPool$")
    pool.getField("MODULE$").get(None).reset()


@pytest.fixture(scope="module")
def kafka_broker(spark):
    """A broker for one test module (starts in ~6 s; the module's tests share it, topics per test)."""
    lib = broker_jars()
    root = Path(tempfile.mkdtemp(prefix="cdp-kafka-"))
    broker = KafkaBroker(root)
    try:
        broker.start(lib)
        yield broker
    finally:
        _close_cached_producers(spark)
        broker.stop()
        shutil.rmtree(root, ignore_errors=True)


def produce(spark, bootstrap: str, topic: str, records: list[tuple[str, str]]) -> None:
    """Publish (key, value) records with Spark's own Kafka writer (spark-sql-kafka, no Python client).

    Keyed records spread over the topic's partitions by key hash; ``acks=all`` (the writer's
    producer default) returns only when the broker holds every record.
    """
    (
        spark.createDataFrame(records, "key string, value string")
        .write.format("kafka")
        .option("kafka.bootstrap.servers", bootstrap)
        .option("topic", topic)
        .save()
    )


def _cluster_id() -> str:
    """A random id in Kafka's Uuid format. Like Kafka's Uuid.randomUuid, never one starting with
    "-": the storage tool's argument parser would take it for an option (1 run in 64 failed)."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid
