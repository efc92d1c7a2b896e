"""Benchmark: bronze ingestion vs a copy-through baseline on the same landing files, same run.

    .venv/bin/python bench/bronze.py --people 1000000            # generates the landing zone first if needed
    .venv/bin/python bench/bronze.py --landing /path/to/landing  # an existing landing zone

For each enabled file source of conf/sources.yaml: the baseline is a plain ``spark.read`` of
the source's files with the contract schema and one Delta write; bronze is one
``ingest_sources`` run over all of them, as ``cdp ingest`` runs it (sources written ``parallel`` at
once, file log, hashing, reads,
quarantine split, two Delta appends per source, one file-log plan and one commit, run log) into
a fresh lakehouse. A source's ``bronze s`` is its own share (its run-log stage); the total is the
run's wall time, shared file-log commits included. The baseline runs before and again after
bronze, and bronze is compared with the mean of the two (the machine's speed drifts). Also
measures the content-hash cost alone. Prints a JSON summary and the markdown rows for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from cdp_lib.bronze.filelog import hash_files, list_files  # noqa: E402
from cdp_lib.bronze.ingest import ingest_sources  # noqa: E402
from cdp_lib.bronze.sources import contract_schema, load_sources, source_location  # noqa: E402
from cdp_lib.config import load_settings  # noqa: E402
from cdp_lib.lakehouse import Lakehouse  # noqa: E402
from cdp_lib.session import build_session  # noqa: E402


def _baseline(spark, source, schema, files: list[str], path: str) -> None:
    opts = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in source.options.items()}
    reader = spark.read.options(**opts).schema(schema)
    if source.format == "csv":
        df = reader.csv(files)
    elif source.format in ("json", "jsonl"):
        df = reader.json(files)
    else:
        df = reader.parquet(*files)
    df.write.format("delta").mode("overwrite").save(path)


def _timed_baseline(spark, source, files: list[str], lake_root: Path) -> float:
    """Seconds of one baseline of ``source`` into a new Delta table (an earlier one is removed first)."""
    path = lake_root / "baseline" / source.name
    shutil.rmtree(path, ignore_errors=True)
    t = time.time()
    _baseline(spark, source, contract_schema(spark, source), files, str(path))
    return time.time() - t


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--people", type=int, default=1_000_000)
    p.add_argument("--days", type=int, default=None, help="generator days (default: conf/generate.yaml)")
    p.add_argument("--landing", default=None, help="existing landing zone (default: generate into --work)")
    p.add_argument("--work", default="/tmp/cdp-bench-bronze", help="scratch folder (landing, lakehouses)")
    p.add_argument("--env", default="local")
    p.add_argument("--source", action="append", help="only these sources")
    p.add_argument("--parallel", type=int, default=None, help="sources written at once (default: sources.yaml)")
    args = p.parse_args(argv)
    # Bronze's own per-source lines (scan, bronze and quarantine seconds, the quarantine route) on stderr.
    logging.basicConfig(format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("cdp_lib.bronze").setLevel(logging.INFO)

    work = Path(args.work)
    settings = load_settings(args.env, PROJECT / "conf")
    spark = build_session(settings, {"spark.ui.enabled": "false"})
    landing = args.landing or str(work / f"landing_{args.people}")
    if args.landing is None and not (Path(landing) / "crm").exists():
        from cdp_lib.generate import generate_sample_data, load_generate_config

        cfg = load_generate_config(PROJECT / "conf")
        update = {"people": args.people, **({"days": args.days} if args.days is not None else {})}
        cfg = cfg.model_validate({**cfg.model_dump(), **update})
        t = time.time()
        generate_sample_data(spark, cfg, 42, landing, str(work / f"truth_{args.people}"), overwrite=True)
        print(f"generated {args.people} people in {time.time() - t:.0f}s", file=sys.stderr)

    lake_root = work / "lake"
    shutil.rmtree(lake_root, ignore_errors=True)
    lh_settings = settings.lakehouse.model_copy(update={"root": str(lake_root), "landing": landing})
    lh = Lakehouse(spark, settings.model_copy(update={"lakehouse": lh_settings}))
    config = load_sources(PROJECT / "conf")
    results = []
    selected = []
    for source in config.sources:
        if source.format == "jdbc" or not source.enabled or (args.source and source.name not in args.source):
            continue
        listed = list_files(spark, source_location(source, landing))
        if not listed:
            continue
        files = [f.path for f in listed]
        base_s = _timed_baseline(spark, source, files, lake_root)
        t = time.time()
        hash_files(spark, files)
        hash_s = time.time() - t
        selected.append(source.name)
        results.append({"source": source.name, "files": len(files), "mb": round(sum(f.size for f in listed) / 1e6, 1),
                        "baseline_s": round(base_s, 2), "hash_s": round(hash_s, 2), "_files": files})
    # Bronze as `cdp ingest` runs it: every source in one run (one file-log plan and one commit).
    t = time.time()
    out = ingest_sources(spark, lh, config, selected, "bench", args.parallel)
    bronze_total = time.time() - t
    # The baseline again after bronze: this machine's speed drifts within minutes (a shared VM),
    # so bronze is compared with the mean of a baseline before and one after it.
    for r, source in zip(results, [config.get(n) for n in selected], strict=True):
        r["baseline_before_s"] = r["baseline_s"]
        r["baseline_after_s"] = round(_timed_baseline(spark, source, r.pop("_files"), lake_root), 2)
        r["baseline_s"] = round((r["baseline_before_s"] + r["baseline_after_s"]) / 2, 2)
    for r in results:
        o = out[r["source"]]
        r.update({"rows": o["rows"], "quarantined": o["quarantined"], "duplicates": o["duplicates"],
                  "bronze_s": o["write_s"], "ratio": round(o["write_s"] / r["baseline_s"], 2)})
        print(json.dumps(r), file=sys.stderr)
    total_b = sum(r["baseline_s"] for r in results)
    before, after = sum(r["baseline_before_s"] for r in results), sum(r["baseline_after_s"] for r in results)
    total_i = bronze_total
    summary = {
        "people": args.people if args.landing is None else None, "landing": landing,
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.system()}, "
                   f"master={settings.spark.master}, driver_memory={settings.spark.driver_memory}",
        "baseline_s": round(total_b, 1), "baseline_before_s": round(before, 1), "baseline_after_s": round(after, 1),
        "bronze_s": round(total_i, 1),
        "ratio": round(total_i / total_b, 2) if total_b else None, "parallel": args.parallel or config.parallel,
        "sources": results,
    }
    print(json.dumps(summary, indent=2))
    print("\n| source | files | MB | rows | quarantined | dup. files | baseline s | bronze s | hash s | ratio |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['source']} | {r['files']} | {r['mb']} | {r['rows']} | {r['quarantined']} | {r['duplicates']} "
              f"| {r['baseline_s']} | {r['bronze_s']} | {r['hash_s']} | {r['ratio']} |")
    print(f"| **total** | | | | | | {summary['baseline_s']} | {summary['bronze_s']} | | {summary['ratio']} |")
    print(f"\nbaseline before bronze {summary['baseline_before_s']} s, after {summary['baseline_after_s']} s")
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
