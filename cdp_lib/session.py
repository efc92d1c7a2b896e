"""The one place a SparkSession is configured.

Library code never builds a session; jobs, the CLI and tests call :func:`build_session`
and pass the session in.
"""

from __future__ import annotations

import logging
import os
import sys
from contextlib import contextmanager

from pyspark.sql import SparkSession
from pyspark.sql.types import DataType, StringType, TimestampType

from cdp_lib.config import Settings
from cdp_lib.runtime import jar_paths

__all__ = ["JAVA_FUNCTIONS", "build_session", "register_functions", "session_conf", "temporary_conf",
           "under_spark_submit"]

log = logging.getLogger(__name__)


def under_spark_submit() -> bool:
    """True when spark-submit launched this Python driver (it owns master and jars)."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def session_conf(settings: Settings, *, include_jars: bool = True) -> dict[str, str]:
    """Every Spark setting the CDP needs, derived from config (used by spark-submit.sh too)."""
    lh = settings.lakehouse
    conf: dict[str, str] = {
        "spark.app.name": settings.spark.app_name,
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": str(settings.spark.shuffle_partitions),
        # Jobs of threads in different pools share the cores (bronze writes sources in lanes);
        # one thread's jobs run as under FIFO.
        "spark.scheduler.mode": "FAIR",
        "spark.sql.warehouse.dir": lh.warehouse_dir,
        "spark.checkpoint.dir": f"{lh.checkpoint_root}/spark",
        # Change Data Feed on every new Delta table: silver/gold read bronze/silver incrementally.
        "spark.databricks.delta.properties.defaults.enableChangeDataFeed": "true",
        # Timestamps are written as UTC instants; keep JVM default zone out of it.
        "spark.driver.extraJavaOptions": "-Duser.timezone=UTC",
        "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
    }
    if settings.spark.driver_memory:
        conf["spark.driver.memory"] = settings.spark.driver_memory
    s3 = settings.s3
    if s3.endpoint:
        conf["spark.hadoop.fs.s3a.endpoint"] = s3.endpoint
    conf["spark.hadoop.fs.s3a.endpoint.region"] = s3.region
    conf["spark.hadoop.fs.s3a.path.style.access"] = str(s3.path_style_access).lower()
    conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] = str(s3.ssl_enabled).lower()
    conf["spark.hadoop.fs.s3a.impl"] = "org.apache.hadoop.fs.s3a.S3AFileSystem"
    for key, value in settings.spark.conf.items():
        conf[key] = str(value).lower() if isinstance(value, bool) else str(value)
    if include_jars:
        if settings.spark.master.startswith("local"):
            # One JVM: put the jars straight on its classpath instead of having the
            # executor copy them (the AWS SDK bundle alone is ~700 MB) from the file server.
            conf["spark.driver.extraClassPath"] = ":".join(jar_paths())
        else:
            conf["spark.jars"] = ",".join(jar_paths())
    return conf


# SQL functions of the project's own Java (cdp_lib/jvm/src): name -> (UDF class, return type).
JAVA_FUNCTIONS: dict[str, tuple[str, DataType]] = {
    "cdp_clean_string": ("io.cdp.silver.CleanString", StringType()),
    "cdp_to_timestamp": ("io.cdp.bronze.ZonedTimestamp", TimestampType()),
}


def register_functions(spark: SparkSession) -> None:
    """Register :data:`JAVA_FUNCTIONS` in ``spark`` (idempotent; :func:`build_session` does it)."""
    for name, (cls, return_type) in JAVA_FUNCTIONS.items():
        spark.udf.registerJavaFunction(name, cls, return_type)


def build_session(settings: Settings, extra_conf: dict[str, str] | None = None) -> SparkSession:
    """Build (or reuse) the SparkSession for ``settings``; registers lakehouse tables."""
    submitted = under_spark_submit()
    builder = SparkSession.builder
    if not submitted:
        builder = builder.master(settings.spark.master)
        # Python workers run the driver's interpreter (the venv with cdp_lib's deps), not
        # whatever python3 is first on PATH.
        builder = builder.config("spark.pyspark.python", os.environ.get("PYSPARK_PYTHON", sys.executable))
        # In-process pyspark builds UDF workers from $PYSPARK_PYTHON (default: "python3" on PATH,
        # i.e. possibly not the venv), ignoring spark.pyspark.python: pin it to this interpreter.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    for key, value in {**session_conf(settings, include_jars=not submitted), **(extra_conf or {})}.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    spark.sparkContext.setCheckpointDir(f"{settings.lakehouse.checkpoint_root}/spark")
    register_functions(spark)
    log.info("spark %s session on %s (env=%s)", spark.version, spark.sparkContext.master, settings.env)
    return spark


@contextmanager
def temporary_conf(spark: SparkSession, values: dict[str, str]):
    """Session settings for the duration of a block, restored afterwards."""
    before = {k: spark.conf.get(k, None) for k in values}
    for k, v in values.items():
        spark.conf.set(k, v)
    try:
        yield
    finally:
        for k, v in before.items():
            spark.conf.unset(k) if v is None else spark.conf.set(k, v)
