"""Benchmark: the incremental day alone, repeatably, from a saved day 0.

    .venv/bin/python bench/incremental_day.py --people 100000 --work /tmp/cdp-bench-day1

The first run generates the sample (as bench/pipeline.py does), runs the full pipeline on day 0
and saves the lakehouse and the landing zone beside them (``day0/``). Every run then restores that
copy, delivers day 1 and times the pipeline on it, stage by stage: the same day each time, so two
versions of the code can be compared on it without re-running day 0. ``--runs`` (default 2) does
that several times in one JVM: the first run of a fresh JVM is slower in every stage (on the 100k
day 1: 313 s cold against 243 s after day 0 in the same process), so compare the later runs, or
runs right after ``--prepare``. ``--prepare`` redoes day 0
(needed when a change alters what day 0 writes). Prints one JSON object; results go to
docs/benchmarks.md by hand, with the command, machine and date.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))


def _copy(src: Path, dst: Path) -> None:
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst, symlinks=True)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--work", type=Path, default=Path("/tmp/cdp-bench-day1"))
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--prepare", action="store_true", help="redo day 0 and its saved copy")
    parser.add_argument("--runs", type=int, default=2, help="restore and time day 1 this many times")
    args = parser.parse_args()
    work = args.work / str(args.people)
    work.mkdir(parents=True, exist_ok=True)
    os.environ["CDP_LAKEHOUSE"] = str(work / "lakehouse")
    os.environ["CDP_LANDING"] = str(work / "landing")
    os.environ.setdefault("CDP_ACTIVATION_URI", str(work / "activation"))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    from bench.pipeline import generated_sample
    from cdp_lib.cli import Context
    from cdp_lib.config import load_settings
    from cdp_lib.pipeline.cli import run_with_checks
    from cdp_lib.pipeline.demo import _dates, deliver_day

    ctx = Context(load_settings("local", PROJECT / "conf"))
    staging, saved = generated_sample(ctx.spark, args.people, work, args.seed), work / "day0"
    day0, day1 = _dates(staging)[:2]
    full_s = None
    if args.prepare or not saved.exists():
        for p in ("lakehouse", "landing", "activation", "day0"):
            shutil.rmtree(work / p, ignore_errors=True)
        deliver_day(staging, work / "landing", day0)
        deliver_day(staging, work / "landing", None)
        t = time.time()
        run_with_checks(ctx)
        full_s = round(time.time() - t, 1)
        ctx.spark.catalog.clearCache()
        for p in ("lakehouse", "landing", "activation"):
            if (work / p).exists():
                _copy(work / p, saved / p)
    runs = []
    for _ in range(args.runs):
        for p in ("lakehouse", "landing", "activation"):
            shutil.rmtree(work / p, ignore_errors=True)
            if (saved / p).exists():
                _copy(saved / p, work / p)
        new_files = deliver_day(staging, work / "landing", day1)
        t = time.time()
        incr = run_with_checks(ctx)
        runs.append({"incremental_s": round(time.time() - t, 1),
                     "incremental_stages_s": {k: v.get("duration_s") for k, v in incr["stages"].items()}})
        ctx.spark.catalog.clearCache()
    print(json.dumps({"people": args.people, "day0_s": full_s, "incremental_new_files": new_files, "runs": runs},
                     indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
