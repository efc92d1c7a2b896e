"""``cdp segments`` (build gold.segment_membership) and ``cdp export`` (activation drops)."""

from __future__ import annotations

import argparse
from datetime import datetime, timezone

from cdp_lib.cli import Context, command

__all__: list[str] = []


def _as_of(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _segments_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--as-of", type=_as_of, default=None, help="evaluation time, ISO-8601 (default: now, UTC)")


def _profile_schema(ctx: Context):
    from cdp_lib.activation.segments import PROFILE_CONTRACT

    lh = ctx.lakehouse
    return lh.read("gold", "customer_profile").schema if lh.exists("gold", "customer_profile") else PROFILE_CONTRACT


@command("segments", "evaluate conf/segments.yaml and MERGE the result into gold.segment_membership", _segments_args)
def _segments(ctx: Context, args: argparse.Namespace):
    from pyspark.sql import functions as F

    from cdp_lib.activation.membership import build_segment_membership, current_members
    from cdp_lib.activation.segments import load_segments
    from cdp_lib.errors import ExportError
    from cdp_lib.runlog import new_run_id, stage_run

    lh = ctx.lakehouse
    config = load_segments(ctx.spark, ctx.settings.conf_dir, _profile_schema(ctx))
    if not lh.exists("gold", "customer_profile"):
        raise ExportError("gold.customer_profile does not exist yet: build gold first")
    run_id = getattr(args, "run_id", None) or new_run_id()
    as_of = args.as_of or datetime.now(timezone.utc)
    with stage_run(ctx.spark, lh.path("ops", "run_log"), run_id, "segments", "segment_membership") as run:
        counts = build_segment_membership(lh, config, as_of, run_id)
        sizes = {
            r["segment"]: r["n"]
            for r in current_members(lh.read("gold", "segment_membership")).groupBy("segment")
            .agg(F.count("*").alias("n")).collect()
        }
        run.rows_out = counts["entered"] + counts["exited"]
        run.details = {"sizes": sizes, **counts}
    return {"run_id": run_id, "as_of": as_of.isoformat(), **counts, "sizes": sizes}


def _export_args(p: argparse.ArgumentParser) -> None:
    # --run-id is common to every command; for export, re-running a completed run id rewrites nothing.
    p.add_argument("--destination", action="append", default=None, help="only this destination (repeatable)")
    p.add_argument("--segment", action="append", default=None, help="only this segment (repeatable)")


@command("export", "drop segment audiences to the destinations in conf/destinations.yaml", _export_args)
def _export(ctx: Context, args: argparse.Namespace):
    from cdp_lib.activation.destinations import load_destinations
    from cdp_lib.activation.export import export_segments
    from cdp_lib.activation.segments import load_segments
    from cdp_lib.runlog import new_run_id

    schema = _profile_schema(ctx)
    segments = load_segments(ctx.spark, ctx.settings.conf_dir, schema)
    destinations = load_destinations([s.name for s in segments.segments], schema, ctx.settings.conf_dir)
    run_id = getattr(args, "run_id", None) or new_run_id()
    drops = export_segments(
        ctx.lakehouse, destinations, run_id, only_destinations=args.destination, only_segments=args.segment
    )
    return {"run_id": run_id, "drops": drops}
