"""The README's main command: sample data, the pipeline on day 0, an incremental day 1, a summary.

Generated files are written to a staging folder and *delivered* to the landing zone one
day at a time (undated reference files with day 0), as an upstream system would, so the
second run is a real incremental run over new files only.
"""

from __future__ import annotations

import logging
import re
import shutil
import time
from functools import reduce
from pathlib import Path

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from cdp_lib.lakehouse import LAYERS

__all__ = ["deliver_day", "run_demo", "summarize"]

log = logging.getLogger(__name__)

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def deliver_day(staging: Path, landing: Path, date: str | None) -> int:
    """Copy one day's files (or, for ``None``, the undated ones) from staging to landing.

    Each file is copied to a temporary name and renamed, so a reader never sees half a file.
    Returns the number of files delivered.
    """
    n = 0
    for src in sorted(p for p in staging.rglob("*") if p.is_file() and not p.name.startswith((".", "_"))):
        rel = src.relative_to(staging)
        dated = [part for part in rel.parts[:-1] if _DATE.match(part)]
        if (dated[0] if dated else None) != date:
            continue
        dst = landing / rel
        if dst.exists():
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(f".{dst.name}.tmp")
        shutil.copyfile(src, tmp)
        tmp.rename(dst)
        n += 1
    return n


def _dates(staging: Path) -> list[str]:
    return sorted({part for p in staging.rglob("*") if p.is_dir() for part in [p.name] if _DATE.match(part)})


def summarize(ctx, runs: list[dict], truth: Path | None) -> dict:
    lh = ctx.lakehouse
    names = [(layer, table) for layer in LAYERS for table in lh.tables(layer)]
    # Every table's row count in one job (one count per table was ~40 jobs of fixed cost).
    counts = reduce(DataFrame.unionByName, [
        lh.read(layer, table).agg(F.count(F.lit(1)).alias("n")).select(F.lit(f"{layer}.{table}").alias("t"), "n")
        for layer, table in names
    ]).collect() if names else []
    by_name = {r.t: r.n for r in counts}
    layers = {f"{layer}.{table}": by_name[f"{layer}.{table}"] for layer, table in names}
    quarantined = sum(n for name, n in layers.items() if name.endswith("_quarantine"))
    out = {"tables": layers, "quarantined_rows": quarantined}
    if lh.exists("gold", "identity_map"):
        imap = lh.read("gold", "identity_map")
        out["customers"] = imap.select("customer_id").distinct().count()
        out["identifiers"] = imap.count()
    if lh.exists("gold", "identity_lineage"):
        lineage = lh.read("gold", "identity_lineage")
        out["lineage_events"] = {
            r[0]: r[1]
            for r in lineage.groupBy(lineage.columns[0] if "event" not in lineage.columns else "event")
            .count()
            .collect()
        }
    if lh.exists("gold", "segment_membership"):
        current = lh.read("gold", "segment_membership").where(F.col("exited_at").isNull())
        out["segment_sizes"] = {r.segment: r["count"] for r in current.groupBy("segment").count().collect()}
    if lh.exists("ops", "activation_log"):
        out["drops_written"] = lh.read("ops", "activation_log").where(F.col("status") == "success").count()
    if truth is not None and (truth / "identifiers").exists() and lh.exists("gold", "identity_map"):
        from cdp_lib.scoring import score_identity_map

        scores = score_identity_map(ctx.spark.read.parquet(str(truth / "identifiers")), lh.read("gold", "identity_map"))
        out["identity_accuracy"] = {
            k: round(v, 4) for k, v in scores.as_dict().items() if k.startswith(("pair", "bcubed"))
        }
    out["runs"] = [
        {
            "run_id": r["run_id"],
            "stage_seconds": {s: v.get("duration_s") for s, v in r["stages"].items()},
            "alerts": r.get("alerts", []),
        }
        for r in runs
    ]
    return out


def run_demo(ctx, people: int = 2000, seed: int = 42, fresh: bool = False, on_stage=None) -> dict:
    from cdp_lib.generate import generate_sample_data, load_generate_config
    from cdp_lib.pipeline.cli import run_with_checks

    settings = ctx.settings
    landing = Path(settings.lakehouse.landing)
    staging = landing.parent / f"{landing.name}_generated"
    truth = landing.parent / "truth"
    if fresh:
        for p in (Path(settings.lakehouse.root), landing, staging, truth):
            shutil.rmtree(p, ignore_errors=True)
    started = time.time()
    if not staging.exists():
        cfg = load_generate_config(settings.conf_dir)
        cfg = cfg.model_validate({**cfg.model_dump(), "people": people, "days": 1})
        log.info("demo: generating %d people (seed %d)", people, seed)
        generate_sample_data(ctx.spark, cfg, seed, str(staging), str(truth), overwrite=True)
    dates = _dates(staging)
    runs = []
    for i, date in enumerate(dates[:2]):
        delivered = deliver_day(staging, landing, date) + (deliver_day(staging, landing, None) if i == 0 else 0)
        log.info("demo: day %d (%s): %d new landing files; running the pipeline", i, date, delivered)
        runs.append(run_with_checks(ctx, on_stage=on_stage))
    summary = summarize(ctx, runs, truth)
    summary["total_seconds"] = round(time.time() - started, 1)
    return summary
