"""``cdp run`` (the pipeline), ``cdp demo`` (sample data, two days, summary) and ``cdp dag``."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from cdp_lib.cli import Context, command

__all__ = ["stage_functions", "run_with_checks"]

log = logging.getLogger(__name__)


def stage_functions():
    """command -> fn(ctx, run_id, args): each stage runs its `cdp` command in this session."""
    from cdp_lib.cli import _COMMANDS, build_parser

    parser = build_parser()

    def make(name):
        def run(ctx, run_id, args):
            ns = parser.parse_args([name, "--run-id", run_id, *args])
            return _COMMANDS[name][2](ctx, ns)

        return run

    return {name: make(name) for name in _COMMANDS}


def run_with_checks(ctx: Context, *, resume=False, submit=False, only=None, run_id=None, on_stage=None) -> dict:
    from cdp_lib.pipeline.alerts import deliver_alerts
    from cdp_lib.pipeline.checks import load_monitoring_config, run_checks
    from cdp_lib.pipeline.config import load_pipeline_config
    from cdp_lib.pipeline.runner import run_pipeline

    conf = ctx.settings.conf_dir
    config = load_pipeline_config(conf)
    monitoring = load_monitoring_config(conf) if (Path(conf) / "monitoring.yaml").exists() else None
    result = run_pipeline(
        ctx, config, stage_functions(), run_id=run_id, resume=resume, submit=submit, only=only, on_stage=on_stage
    )
    if monitoring is not None:
        alerts = run_checks(ctx.lakehouse, result["run_id"], monitoring)
        result["alerts"] = [a.message for a in alerts]
        result["alerts_delivered"] = deliver_alerts(ctx.lakehouse, alerts, monitoring.sinks)
    return result


def _progress(stage: str, status: str, summary) -> None:
    log.info(
        "stage %-9s %s %s",
        stage,
        status,
        {k: v for k, v in summary.items() if k in ("rows_in", "rows_out", "rows_quarantined", "duration_s")},
    )


def _run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--submit", action="store_true", help="run each stage through spark-submit.sh")
    p.add_argument("--resume", action="store_true", help="re-run the latest failed run from its failed stage")
    p.add_argument("--only", default=None, help="comma-separated stage names")


@command("run", "run the pipeline (conf/pipeline.yaml) then the data-quality checks", _run_args)
def _run(ctx: Context, args: argparse.Namespace):
    only = args.only.split(",") if args.only else None
    return run_with_checks(
        ctx, resume=args.resume, submit=args.submit, only=only, run_id=args.run_id, on_stage=_progress
    )


def _demo_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--people", type=int, default=2000, help="people in the generated sample (default 2000)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--fresh", action="store_true", help="start from an empty lakehouse and landing zone")


@command(
    "demo", "generate sample data, run the pipeline for day 0 and an incremental day 1, print a summary", _demo_args
)
def _demo(ctx: Context, args: argparse.Namespace):
    from cdp_lib.pipeline.demo import run_demo

    return run_demo(ctx, people=args.people, seed=args.seed, fresh=args.fresh, on_stage=_progress)


def _dag_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="airflow/cdp_pipeline_dag.py", help="where to write the DAG file")
    p.add_argument("--schedule", default="0 3 * * *", help="cron schedule (default: daily 03:00 UTC)")


@command("dag", "write an Airflow DAG (one spark-submit task per stage) from conf/pipeline.yaml", _dag_args)
def _dag(ctx: Context, args: argparse.Namespace):
    from cdp_lib.pipeline.airflow import write_dag
    from cdp_lib.pipeline.config import load_pipeline_config

    path = write_dag(load_pipeline_config(ctx.settings.conf_dir), Path(args.out), ctx.settings.env, args.schedule)
    return {"dag": str(path)}


def _maintain_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dry-run", action="store_true", help="change nothing; count the files VACUUM would remove now")
    p.add_argument("--layers", default=None, help="comma-separated layers (default: bronze,silver,gold,ops)")


@command("maintain", "set every table's file retention, compact small-file tables, VACUUM (see "
                     "cdp_lib/maintenance.py); run it when no pipeline run is writing", _maintain_args)
def _maintain(ctx: Context, args: argparse.Namespace):
    from cdp_lib.errors import CdpError
    from cdp_lib.lakehouse import LAYERS
    from cdp_lib.maintenance import maintain_lakehouse

    layers = tuple(args.layers.split(",")) if args.layers else LAYERS
    if unknown := [layer for layer in layers if layer not in LAYERS]:
        raise CdpError(f"maintain: unknown layer(s) {', '.join(unknown)}; expected some of {', '.join(LAYERS)}")
    return maintain_lakehouse(ctx.lakehouse, run_id=args.run_id, dry_run=args.dry_run, layers=layers)
