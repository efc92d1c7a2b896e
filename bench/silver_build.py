"""Silver's full rebuild on a copy of an existing lakehouse: entities one at a time, then two at a time.

    flock /tmp/cdp-spark.lock .venv/bin/python bench/silver_build.py <lakehouse root> --work <dir> \\
        [--parallel 1 2 1 2]

Copies ``<lakehouse root>`` to ``<dir>`` (the original is not written), then, in one SparkSession
with the shipped local config, rebuilds every silver entity from bronze (``build_silver(...,
full_rebuild=True)``) once per ``--parallel`` value, in the order given (interleave them: the first
run also warms the JVM). Every rebuild does the same work and must leave the same rows: the
script checks each silver table's row count and content hash against the first rebuild's and
fails when one differs. Prints JSON: seconds per rebuild and per entity, and each table's rows and
content hash (compare them across commits: a change that should not alter silver must print the
same).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from pyspark.sql import functions as F  # noqa: E402

from bench.identity_resolve import profiled_session  # noqa: E402
from cdp_lib.lakehouse import Lakehouse  # noqa: E402
from cdp_lib.silver.build import build_silver  # noqa: E402
from cdp_lib.silver.spec import load_silver_config  # noqa: E402


def _digest(lh: Lakehouse, tables: list[str]) -> dict[str, tuple[int, int]]:
    """(rows, order-free content hash) of each silver table, the writing run's id excluded."""
    out = {}
    for table in tables:
        df = lh.read("silver", table)
        cols = [c for c in df.columns if c != "_run_id"]
        row = df.select(F.count(F.lit(1)), F.sum(F.xxhash64(F.to_json(F.struct(*cols))).cast("decimal(38,0)"))).first()
        out[table] = (row[0], int(row[1] or 0))
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("lakehouse")
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--parallel", type=int, nargs="+", default=[1, 2, 1, 2])
    parser.add_argument("--conf-dir", default=str(PROJECT / "conf"))
    args = parser.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    shutil.copytree(args.lakehouse, args.work)
    spark, settings = profiled_session(str(args.work), args.conf_dir)
    try:
        lh = Lakehouse(spark, settings)
        cfg = load_silver_config(settings.conf_dir)
        tables = sorted({e.table for e in cfg.entities.values()})
        runs, first = [], None
        for parallel in args.parallel:
            started = time.time()
            result = build_silver(spark, lh, cfg, full_rebuild=True, parallel=parallel)
            seconds = round(time.time() - started, 1)
            digest = _digest(lh, tables)
            first = first or digest
            if digest != first:
                raise SystemExit(f"rebuild with parallel={parallel} left different silver rows: {digest} != {first}")
            timed = {r["source"]: r["duration_s"] for r in lh.read("ops", "run_log").where(
                (F.col("run_id") == result["run_id"]) & (F.col("stage") == "silver")).collect()}
            runs.append({"parallel": parallel, "seconds": seconds, "entities_s": timed})
            print(json.dumps(runs[-1]), flush=True)
        # The content hashes too: two commits' rebuilds of one lakehouse must print the same.
        print(json.dumps({"lakehouse": args.lakehouse, "rows": {t: r for t, (r, _) in first.items()},
                          "content_hash": {t: str(h) for t, (_, h) in first.items()}, "runs": runs}, indent=2))
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
