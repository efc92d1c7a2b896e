"""Benchmark: generate N people (default 1M, ~10M events) with a small driver heap.

    flock /tmp/cdp-spark.lock .venv/bin/python bench/generate.py --people 1000000 --driver-memory 2g

Prints one JSON object: wall time, rows per source (from the ground truth), files, the
driver's JVM heap limit and the Python driver's peak RSS. Results: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import shutil
import time
from pathlib import Path

from cdp_lib.config import load_settings
from cdp_lib.generate import GenerateConfig, generate_sample_data, load_generate_config
from cdp_lib.session import build_session


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, default=1_000_000)
    ap.add_argument("--days", type=int, default=2)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--out", default="/tmp/cdp-bench-generate/landing")
    ap.add_argument("--driver-memory", default="2g")
    ap.add_argument("--keep", action="store_true", help="keep the generated files")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    settings = load_settings("local")
    spark = build_session(settings, {
        "spark.driver.memory": args.driver_memory,
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
    })
    cfg = load_generate_config(settings.conf_dir)
    cfg = GenerateConfig.model_validate({**cfg.model_dump(), "people": args.people, "days": args.days})
    out = Path(args.out)
    started = time.time()
    result = generate_sample_data(spark, cfg, args.seed, str(out), overwrite=True)
    seconds = time.time() - started
    counts = {r["source"]: r["count"] for r in
              spark.read.parquet(f"{result.truth}/records").groupBy("source").count().collect()}
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    report = {
        "people": args.people, "days": args.days, "seed": args.seed, "seconds": round(seconds, 1),
        "events": counts.get("web_events", 0) + counts.get("app_events", 0), "records": counts,
        "identifiers": spark.read.parquet(f"{result.truth}/identifiers").count(),
        "landing_files": sum(result.files.values()) + len(result.redelivered), "landing_bytes": size,
        "driver_jvm_max_heap_mb": spark._jvm.java.lang.Runtime.getRuntime().maxMemory() // 2**20,
        "python_driver_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
        "spark": spark.version, "cores": spark.sparkContext.defaultParallelism,
    }
    print(json.dumps(report, indent=2))
    spark.stop()
    if not args.keep:
        shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(result.truth, ignore_errors=True)


if __name__ == "__main__":
    main()
