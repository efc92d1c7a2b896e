"""The run log: one row per stage (and per source where a stage has several) per run.

``ops.run_log`` is an append-only Delta table; the pipeline runner, data-quality checks
and the demo summary read it. Messages must never carry personal data: pass counts,
table names and exception types, not row contents.

While a stage row (``source`` None) is open, the per-source rows its code logs to the same
table are held and committed together with the stage row when it ends, failed or not: one
Delta commit per stage instead of one per source (the commits were a measurable share of a
small run's time). A process killed mid-stage writes neither, as before it wrote no stage row.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timezone

from pyspark.sql import SparkSession
from pyspark.sql import types as T

__all__ = ["RUN_LOG_SCHEMA", "StageRun", "held_source_rows", "nested_totals", "new_run_id", "record_stage",
           "stage_run"]

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
    nested: list[tuple] = field(default_factory=list)  # per-source rows held until this stage row ends


# The open stage row of this thread/context: (run-log path, its StageRun).
_OPEN_STAGE: ContextVar[tuple[str, StageRun] | None] = ContextVar("cdp_open_stage", default=None)


def _row(run: StageRun, started: float, ended: float, error: str | None) -> tuple:
    return (
        run.run_id, run.stage, run.source, run.status,
        datetime.fromtimestamp(started, timezone.utc).replace(tzinfo=None),
        datetime.fromtimestamp(ended, timezone.utc).replace(tzinfo=None),
        round(ended - started, 3), run.rows_in, run.rows_out, run.rows_quarantined, error,
        json.dumps(run.details, sort_keys=True, default=str) if run.details else None,
    )


def record_stage(spark: SparkSession, path: str, run: StageRun, started: float, ended: float,
                 error: str | None = None) -> None:
    """Append ``run``'s row (and the rows held for it) to the run log at ``path`` (a Delta table);
    a per-source row is held instead while a stage row of the same log is open."""
    row = _row(run, started, ended, error)
    open_stage = _OPEN_STAGE.get()
    if run.source is not None and open_stage is not None and open_stage[0] == path:
        open_stage[1].nested.append(row)
        return
    spark.createDataFrame([*run.nested, row], RUN_LOG_SCHEMA).write.format("delta").mode("append").save(path)


@contextmanager
def held_source_rows(spark: SparkSession, path: str):
    """Per-source rows logged inside are committed together when it ends (one Delta commit), as
    an open stage row would hold them; inside an open stage row of ``path``, that row holds them.

    The hold lives in the context: code that logs from worker threads must run there in a copy
    of this context (``contextvars.copy_context().run``)."""
    open_stage = _OPEN_STAGE.get()
    if open_stage is not None and open_stage[0] == path:
        yield
        return
    holder = StageRun(run_id="", stage="")
    token = _OPEN_STAGE.set((path, holder))
    try:
        yield
    finally:
        _OPEN_STAGE.reset(token)
        if holder.nested:
            spark.createDataFrame(holder.nested, RUN_LOG_SCHEMA).write.format("delta").mode("append").save(path)


def nested_totals(run: StageRun) -> dict[str, int | None]:
    """Rows in / out / quarantined summed over the per-source rows held for stage row ``run``."""
    out: dict[str, int | None] = {}
    for name, i in (("rows_in", 7), ("rows_out", 8), ("rows_quarantined", 9)):
        values = [r[i] for r in run.nested if r[i] is not None]
        out[name] = sum(values) if values else None
    return out


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
    token = _OPEN_STAGE.set((path, run)) if source is None else None
    try:
        yield run
    except Exception as exc:
        if token is not None:
            _OPEN_STAGE.reset(token)
            token = None
        run.status = "failed"
        ended = time.time()
        # The exception type and message only: stage code must not put row values in messages.
        record_stage(spark, path, run, started, ended, error=f"{type(exc).__name__}: {exc}"[:2000])
        log.error("run %s: %s failed after %.1fs (%s)", run_id, label, ended - started, type(exc).__name__)
        raise
    finally:
        if token is not None:
            _OPEN_STAGE.reset(token)
    ended = time.time()
    record_stage(spark, path, run, started, ended)
    log.info(
        "run %s: %s %s in %.1fs (in=%s out=%s quarantined=%s)",
        run_id, label, run.status, ended - started, run.rows_in, run.rows_out, run.rows_quarantined,
    )
