"""Run the pipeline's stages in order, in one SparkSession or each through spark-submit.sh.

Every stage attempt is a row in ``ops.run_log`` (stage = the stage name, source null);
stages may add their own per-source rows. A stage failing with a :class:`CdpError`
(bad config, bad data, a guard tripping) is not retried: running it again cannot help.
Anything else (a lost executor, an I/O hiccup, a killed subprocess) is retried
``retries`` times. ``resume`` re-runs the latest failed run under the same run id,
skipping its stages that already succeeded.
"""

from __future__ import annotations

import logging
import os
import subprocess
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path

from pyspark.sql import functions as F

from cdp_lib.errors import CdpError
from cdp_lib.pipeline.config import PipelineConfig, StageSpec
from cdp_lib.runlog import nested_totals, new_run_id, stage_run

__all__ = ["StageFailed", "run_pipeline", "latest_failed_run", "succeeded_stages"]

log = logging.getLogger(__name__)

StageFn = Callable[..., Mapping | None]


class StageFailed(CdpError):
    """A stage failed after its retries; the message names stage, run id and cause."""


def _run_log_path(ctx) -> str:
    return ctx.lakehouse.path("ops", "run_log")


def succeeded_stages(ctx, run_id: str) -> set[str]:
    if not ctx.lakehouse.exists("ops", "run_log"):
        return set()
    rows = (
        ctx.lakehouse.read("ops", "run_log")
        .where((F.col("run_id") == run_id) & F.col("source").isNull() & (F.col("status") == "success"))
        .select("stage")
        .distinct()
        .collect()
    )
    return {r.stage for r in rows}


def latest_failed_run(ctx, stages: list[str] | None = None) -> str | None:
    """The newest pipeline run whose last attempt of some stage failed. ``stages``: the pipeline's
    stage names; rows of other commands (``cdp maintain``, ``cdp generate``) then do not count."""
    if not ctx.lakehouse.exists("ops", "run_log"):
        return None
    runs = ctx.lakehouse.read("ops", "run_log").where(F.col("source").isNull())
    if stages is not None:
        runs = runs.where(F.col("stage").isin(stages))
    latest = runs.groupBy("run_id").agg(F.max("ended_at").alias("ended_at")).orderBy(F.desc("ended_at")).first()
    if latest is None:
        return None
    stages = runs.where(F.col("run_id") == latest.run_id)
    last = stages.groupBy("stage").agg(F.max_by("status", "ended_at").alias("status"))
    return latest.run_id if last.where(F.col("status") == "failed").limit(1).count() else None


def _table_totals(ctx, run_id: str, since: float) -> dict:
    """Rows in / out / quarantined summed over the per-table run-log rows a stage's
    spark-submit job wrote (in session mode they are held in memory: ``nested_totals``)."""
    empty = {"rows_in": None, "rows_out": None, "rows_quarantined": None}
    if not ctx.lakehouse.exists("ops", "run_log"):
        return empty
    rows = ctx.lakehouse.read("ops", "run_log").where(
        (F.col("run_id") == run_id) & F.col("source").isNotNull()
        & (F.col("started_at") >= F.lit(datetime.fromtimestamp(since, timezone.utc).replace(tzinfo=None)))
    )
    row = rows.agg(*[F.sum(c).alias(c) for c in empty]).first()
    return {c: (int(row[c]) if row[c] is not None else None) for c in empty}


def _release_cached_frames(ctx) -> None:
    """Nothing a stage caches is meant to outlive it; in one long session (``cdp run``, the demo)
    stale cache entries would hold memory and slow the planning of every later query."""
    ctx.spark.catalog.clearCache()


def _submit(ctx, stage: StageSpec, run_id: str) -> Mapping:
    project = Path(__file__).resolve().parents[2]
    cmd = [
        str(project / "spark-submit.sh"),
        stage.job,
        "--env",
        ctx.settings.env,
        "--conf-dir",
        str(ctx.settings.conf_dir),
        "--run-id",
        run_id,
        *stage.args,
    ]
    env = {k: v for k, v in os.environ.items() if k != "PYSPARK_GATEWAY_PORT"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    log.debug("spark-submit %s exited %d", stage.job, proc.returncode)
    if proc.returncode == 2:
        # spark-submit.sh / cdp exit 2 on a CdpError: not transient.
        raise StageFailed(f"stage {stage.name}: {proc.stderr.strip().splitlines()[-1] if proc.stderr else 'failed'}")
    if proc.returncode != 0:
        raise RuntimeError(f"spark-submit of {stage.job} exited {proc.returncode}")
    return {}


def run_pipeline(
    ctx,
    config: PipelineConfig,
    stage_fns: Mapping[str, StageFn],
    *,
    run_id: str | None = None,
    resume: bool = False,
    submit: bool = False,
    only: list[str] | None = None,
    on_stage: Callable[[str, str, Mapping], None] | None = None,
) -> dict:
    """Run every enabled stage in dependency order; returns per-stage summaries.

    Args:
        stage_fns: command -> ``fn(ctx, run_id, args) -> summary`` (session mode).
        run_id: defaults to a new id; with ``resume`` the latest failed run's id.
        submit: run each stage through spark-submit.sh instead of in this session.
        only: run just these stages (still in dependency order).
        on_stage: progress callback ``(stage, status, summary)``.
    """
    if resume:
        run_id = run_id or latest_failed_run(ctx, [stage.name for stage in config.stages])
        if run_id is None:
            raise CdpError("nothing to resume: no failed pipeline run in ops.run_log")
    run_id = run_id or new_run_id()
    skip = succeeded_stages(ctx, run_id) if resume else set()
    results: dict[str, dict] = {"run_id": run_id, "stages": {}}
    for stage in config.ordered():
        if only and stage.name not in only:
            continue
        if stage.name in skip:
            log.info("run %s: stage %s already succeeded, skipped (resume)", run_id, stage.name)
            results["stages"][stage.name] = {"status": "skipped"}
            continue
        if not submit and stage.command not in stage_fns:
            raise StageFailed(f"stage {stage.name}: no stage function for command {stage.command!r}")
        attempt = 0
        while True:
            attempt += 1
            started = time.time()
            try:
                with stage_run(ctx.spark, _run_log_path(ctx), run_id, stage.name) as run:
                    if submit:
                        summary = dict(_submit(ctx, stage, run_id))
                    else:
                        summary = dict(stage_fns[stage.command](ctx, run_id, stage.args) or {})
                    if submit:
                        totals = _table_totals(ctx, run_id, started)
                    else:
                        _release_cached_frames(ctx)
                        totals = nested_totals(run)
                    run.rows_in = summary.get("rows_in", totals["rows_in"])
                    run.rows_out = summary.get("rows_out", totals["rows_out"])
                    run.rows_quarantined = summary.get("rows_quarantined", totals["rows_quarantined"])
                    run.details = {
                        "attempt": attempt,
                        **{k: v for k, v in summary.items() if k not in ("rows_in", "rows_out", "rows_quarantined")},
                    }
                summary["duration_s"] = round(time.time() - started, 1)
                summary["attempts"] = attempt
                results["stages"][stage.name] = {"status": "success", **summary}
                if on_stage:
                    on_stage(stage.name, "success", summary)
                break
            except CdpError as exc:
                if on_stage:
                    on_stage(stage.name, "failed", {"error": str(exc)})
                raise StageFailed(f"run {run_id}: stage {stage.name} failed: {exc}") from exc
            except Exception as exc:  # transient until proven otherwise
                if attempt > stage.retries:
                    if on_stage:
                        on_stage(stage.name, "failed", {"error": type(exc).__name__})
                    raise StageFailed(
                        f"run {run_id}: stage {stage.name} failed after {attempt} attempt(s): "
                        f"{type(exc).__name__}: {exc}; fix the cause and re-run with --resume"
                    ) from exc
                log.warning(
                    "run %s: stage %s attempt %d failed (%s); retrying in %.0fs",
                    run_id,
                    stage.name,
                    attempt,
                    type(exc).__name__,
                    stage.retry_delay_s,
                )
                time.sleep(stage.retry_delay_s)
    return results
