"""One session-scoped SparkSession for the whole suite, tuned for tiny test data."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cdp_lib.config import load_settings

PROJECT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def tmp_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cdp")


@pytest.fixture(scope="session")
def settings(tmp_root, monkeypatch_session):
    # The real conf/ with the lakehouse moved into a temp dir: tests exercise the shipped config.
    monkeypatch_session.setenv("CDP_LAKEHOUSE", str(tmp_root / "lakehouse"))
    monkeypatch_session.setenv("CDP_LANDING", str(tmp_root / "landing"))
    return load_settings("local", PROJECT / "conf")


@pytest.fixture(scope="session")
def monkeypatch_session():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


@pytest.fixture(scope="session")
def spark(settings):
    from cdp_lib.session import build_session, session_conf

    java_options = session_conf(settings, include_jars=False)["spark.driver.extraJavaOptions"]
    test_conf = {
        # The throughput collector: tests/test_silver_build.py took 130.5 and 130.6 s with it against
        # 138.3, 139.2 and 142.2 s with the default G1 (and 141.2 s with SerialGC), runs interleaved
        # (/tmp/prof/jvmflags.py, 2026-12-05). Thousands of tiny queries: allocation-heavy planning,
        # no pause-time goal worth G1's barriers and concurrent work on 2 cores.
        "spark.driver.extraJavaOptions": f"{java_options} -XX:+UseParallelGC",
        # Test frames have a handful of rows: 200 (or even 4) shuffle partitions is pure overhead.
        "spark.sql.shuffle.partitions": "2",
        "spark.default.parallelism": "2",
        # No UI: saves start-up time and a port per run.
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        # Delta reads its log with its own partition count; keep it tiny.
        "spark.databricks.delta.snapshotPartitions": "1",
        # Skip Delta's per-commit stats collection and log compaction work the tests never read.
        "spark.databricks.delta.stats.collect": "false",
        # One JVM serves ~140 tests: give it room for broadcasts after many cached frames.
        "spark.driver.memory": "4g",
        # The SQL/job status store keeps every execution's plan graph; ~140 tests run thousands of
        # queries (Delta MERGEs, iterative components) and the history alone filled the heap.
        "spark.sql.ui.retainedExecutions": "20",
        "spark.ui.retainedJobs": "50",
        "spark.ui.retainedStages": "50",
        "spark.ui.retainedTasks": "1000",
        "spark.sql.streaming.ui.retainedQueries": "10",
        "spark.sql.streaming.ui.retainedProgressUpdates": "10",
        # Each broadcast hash relation holds at least one memory page; the default page for a 4g
        # driver is 64 MB, so a few dozen broadcasts still referenced by live plans filled the
        # heap (the CI OOM). Test data fits in 1 MB pages.
        "spark.buffer.pageSize": "1m",
        # Let the ContextCleaner drop unreferenced broadcasts, shuffles and checkpoints often.
        "spark.cleaner.periodicGC.interval": "1min",
        # Tiny data, thousands of short queries: compiling generated code and re-planning at
        # every shuffle cost more than they save. Measured on the identity stage of the 50-person
        # demo lakehouse (/tmp/prof/variants.py, 2026-11-30): 83-95 s -> 50-60 s with these off
        # plus the two Delta settings below. Results do not depend on them (same operators,
        # interpreted); the cluster tests keep Spark's defaults.
        "spark.sql.adaptive.enabled": "false",
        "spark.sql.codegen.wholeStage": "false",
        "spark.sql.codegen.factoryMode": "NO_CODEGEN",
        # Small tables with many small commits: no checksum file per commit, log checkpoints
        # every 100 commits instead of 10 (each checkpoint is a Spark job).
        "spark.databricks.delta.writeChecksumFile.enabled": "false",
        "spark.databricks.delta.properties.defaults.checkpointInterval": "100",
    }
    session = build_session(settings, test_conf)
    yield session
    session.stop()


@pytest.fixture(scope="module", autouse=True)
def _release_cached_frames():
    """Library code caches frames it reuses within a stage; free them between test modules so the
    one long-lived driver does not run out of memory for broadcasts late in the suite."""
    yield
    import gc

    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        active.catalog.clearCache()
        gc.collect()  # drop Python handles on JVM objects (plans, broadcasts) of the finished module
        active.sparkContext._jvm.System.gc()


@pytest.fixture(scope="session")
def lakehouse(spark, settings):
    from cdp_lib.lakehouse import Lakehouse

    return Lakehouse(spark, settings)


@pytest.fixture(scope="session")
def sample_landing(spark, tmp_root):
    """One small generated landing zone (50 people, days 0 and 1) + truth, shared by the
    end-to-end demo test and the cluster pipeline test: ``(staging dir, truth dir)``."""
    from cdp_lib.generate import generate_sample_data, load_generate_config

    cfg = load_generate_config(PROJECT / "conf")
    cfg = cfg.model_validate({**cfg.model_dump(), "people": 50, "days": 1})
    staging, truth = tmp_root / "sample" / "staging", tmp_root / "sample" / "truth"
    generate_sample_data(spark, cfg, 7, str(staging), str(truth), overwrite=True)
    return staging, truth


@pytest.fixture
def fresh_dir(tmp_path):
    """A per-test directory, removed afterwards to keep /tmp small."""
    yield tmp_path
    shutil.rmtree(tmp_path, ignore_errors=True)
