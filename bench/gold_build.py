"""Gold's customer profiles on an existing lakehouse: wall time and where it goes.

    flock /tmp/cdp-spark.lock .venv/bin/python bench/gold_build.py <lakehouse root> [--incremental] [--top 25]

    flock /tmp/cdp-spark.lock .venv/bin/python bench/gold_build.py <lakehouse root> --replay-last <work dir>

Builds gold.customer_profile (``build_gold``) from the silver tables and gold.identity_map of
``<lakehouse root>`` with the shipped local config: a full build by default, or an incremental one
(only customers touched since the last build) with ``--incremental``. The build is as of the last
build's as-of time (``--as-of`` to choose), so a full rebuild over an unchanged lakehouse changes no
row when the code gives the same profiles. Lists the Spark SQL executions that took longest, each
labelled with the ``cdp_lib`` line whose action started it. Prints JSON: seconds, profiles, rows
changed, the executions. Writes to the lakehouse: gold.customer_profile and its build state.

``--replay-last <work dir>``: copies the lakehouse to ``<work dir>`` (the original is not written),
puts the profile table and the build state back to before the last build there, and times that
build again, incrementally (the pipeline's incremental day, e.g. after ``bench/incremental_day.py``;
with the shipped ``recompute_all_share`` it recomputes every profile when more than that share of the
customers were touched: ``--recompute-all-share 1`` forces the scoped build); then a full build as of
the same time, whose ``rows_changed`` is how many profiles the incremental build got wrong (0 when
incremental equals full). ``--replay-full``: the replayed build is a full one (what the day costs
without the incremental path, in a JVM as cold as the incremental replay's), and no check follows.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from datetime import datetime
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from pyspark.sql import functions as F  # noqa: E402

from bench.identity_resolve import profiled_session, slowest_executions  # noqa: E402
from cdp_lib.gold.build import build_gold  # noqa: E402
from cdp_lib.gold.config import load_gold_config, load_traits_config  # noqa: E402
from cdp_lib.lakehouse import Lakehouse  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("lakehouse")
    parser.add_argument("--incremental", action="store_true")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--conf-dir", default=str(PROJECT / "conf"))
    parser.add_argument("--as-of", type=datetime.fromisoformat, help="default: the last build's as-of time")
    parser.add_argument("--replay-last", type=Path, metavar="WORK_DIR")
    parser.add_argument("--replay-full", action="store_true", help="with --replay-last: replay it as a full build")
    parser.add_argument("--recompute-all-share", type=float, help="default: conf/gold.yaml's")
    args = parser.parse_args()
    if args.replay_full and not args.replay_last:
        parser.error("--replay-full needs --replay-last")
    root = args.lakehouse
    if args.replay_last:
        shutil.rmtree(args.replay_last, ignore_errors=True)
        shutil.copytree(args.lakehouse, args.replay_last)
        root = str(args.replay_last)
    spark, settings = profiled_session(root, args.conf_dir)
    try:
        lh = Lakehouse(spark, settings)
        cfg = load_gold_config(settings.conf_dir)
        if args.recompute_all_share is not None:
            cfg = cfg.model_copy(update={"recompute_all_share": args.recompute_all_share})
        traits = load_traits_config(cfg.inputs, settings.conf_dir)
        as_of = args.as_of
        if args.replay_last:
            as_of = as_of or _undo_last_build(spark, lh)
        elif as_of is None and lh.exists("ops", "gold_state"):
            as_of = lh.read("ops", "gold_state").orderBy(F.desc("recorded_at")).first().as_of
        started = time.time()
        full = args.replay_full if args.replay_last else not args.incremental
        result = build_gold(spark, lh, cfg, traits, f"bench-{int(started)}", as_of=as_of, full=full)
        seconds = time.time() - started
        report = {"seconds": round(seconds, 1), "as_of": str(as_of), **result, **slowest_executions(spark, args.top)}
        if args.replay_last and not args.replay_full:
            again = time.time()
            check = build_gold(spark, lh, cfg, traits, f"bench-full-{int(again)}", as_of=as_of, full=True)
            report["full_rebuild"] = {"seconds": round(time.time() - again, 1),
                                      "rows_changed": check["rows_changed"]}
        print(json.dumps(report, indent=2))
    finally:
        spark.stop()
    return 0


def _undo_last_build(spark, lh) -> datetime:
    """Put gold.customer_profile and ops.gold_state back to before the last build; its as-of time."""
    states = lh.read("ops", "gold_state").orderBy("recorded_at").collect()
    if len(states) < 2:
        raise SystemExit("--replay-last needs two gold builds in the lakehouse (a full one and the one to replay)")
    # the table as the build before the last one left it (its last commit before that build's state row)
    profile = lh.delta("gold", "customer_profile")
    older = [r.version for r in profile.history().select("version", "timestamp").collect()
             if r.timestamp <= states[-2].recorded_at]
    if not older:
        raise SystemExit(
            "--replay-last: gold.customer_profile has no commit from before the last build (the table was "
            f"recreated after the build state of {states[-2].recorded_at}); run a full build, then the one to replay")
    profile.restoreToVersion(max(older))
    spark.createDataFrame(states[:-1]).write.format("delta").mode("overwrite").save(lh.path("ops", "gold_state"))
    return states[-1].as_of


if __name__ == "__main__":
    sys.exit(main())
