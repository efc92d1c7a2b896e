"""The run log: one row per stage (and per source where a stage has several) per run.

``ops.run_log`` is an append-only Delta table; the pipeline runner, data-quality checks
and the demo summary read it. Messages must never carry personal data: pass counts,
table names and exception types, not row contents.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone

from pyspark.sql import SparkSession
from pyspark.sql import types as T

__all__ = ["RUN_LOG_SCHEMA", "StageRun", "new_run_id", "record_stage", "stage_run"]

log = logging.getLogger(__name__)

RUN_LOG_SCHEMA = T.StructType(
    [
        T.StructField("run_id", T.StringType(), False),
        T.StructField("stage", T.StringType(), False),
        T.StructField("source", T.StringType(), True),
        T.StructField("status", T.StringType(), False),  # success | failed | skipped
        T.StructField("started_at", T.TimestampType(), False),
        T.StructField("ended_at", T.TimestampType(), False),
        T.StructField("duration_s", T.DoubleType(), False),
        T.StructField("rows_in", T.LongType(), True),
        T.StructField("rows_out", T.LongType(), True),
        T.StructField("rows_quarantined", T.LongType(), True),
        T.StructField("error", T.StringType(), True),
        T.StructField("details", T.StringType(), True),  # JSON object, stage-specific
    ]
)


def new_run_id() -> str:
    """Sortable, unique: UTC timestamp plus a random suffix."""
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]


@dataclass
class StageRun:
    """Counters a stage fills in while it runs; written by :func:`stage_run`."""

    run_id: str
    stage: str
    source: str | None = None
    rows_in: int | None = None
    rows_out: int | None = None
    rows_quarantined: int | None = None
    status: str = "success"
    details: dict = field(default_factory=dict)


def record_stage(spark: SparkSession, path: str, run: StageRun, started: float, ended: float,
                 error: str | None = None) -> None:
    """Append one row to the run log at ``path`` (a Delta table)."""
    row = (
        run.run_id, run.stage, run.source, run.status,
        datetime.fromtimestamp(started, timezone.utc).replace(tzinfo=None),
        datetime.fromtimestamp(ended, timezone.utc).replace(tzinfo=None),
        round(ended - started, 3), run.rows_in, run.rows_out, run.rows_quarantined, error,
        json.dumps(run.details, sort_keys=True, default=str) if run.details else None,
    )
    spark.createDataFrame([row], RUN_LOG_SCHEMA).write.format("delta").mode("append").save(path)


@contextmanager
def stage_run(spark: SparkSession, path: str, run_id: str, stage: str, source: str | None = None):
    """Time a stage and log it; a failure is logged with its error type and re-raised.

    Usage::

        with stage_run(spark, lakehouse.path("ops", "run_log"), run_id, "bronze", "crm") as run:
            run.rows_in = ...
    """
    run = StageRun(run_id=run_id, stage=stage, source=source)
    started = time.time()
    label = f"{stage}/{source}" if source else stage
    log.info("run %s: %s started", run_id, label)
    try:
        yield run
    except Exception as exc:
        run.status = "failed"
        ended = time.time()
        # The exception type and message only: stage code must not put row values in messages.
        record_stage(spark, path, run, started, ended, error=f"{type(exc).__name__}: {exc}"[:2000])
        log.error("run %s: %s failed after %.1fs (%s)", run_id, label, ended - started, type(exc).__name__)
        raise
    ended = time.time()
    record_stage(spark, path, run, started, ended)
    log.info(
        "run %s: %s %s in %.1fs (in=%s out=%s quarantined=%s)",
        run_id, label, run.status, ended - started, run.rows_in, run.rows_out, run.rows_quarantined,
    )
