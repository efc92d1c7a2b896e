"""Gold's customer profiles on an existing lakehouse: wall time and where it goes.

    flock /tmp/cdp-spark.lock .venv/bin/python bench/gold_build.py <lakehouse root> [--incremental] [--top 25]

Builds gold.customer_profile (``build_gold``) from the silver tables and gold.identity_map of
``<lakehouse root>`` with the shipped local config: a full build by default, or an incremental one
(only customers touched since the last build) with ``--incremental``. The build is as of the last
build's as-of time (``--as-of`` to choose), so a full rebuild over an unchanged lakehouse changes no
row when the code gives the same profiles. Lists the Spark SQL executions that took longest, each
labelled with the ``cdp_lib`` line whose action started it. Prints JSON: seconds, profiles, rows
changed, the executions. Writes to the lakehouse: gold.customer_profile and its build state.
"""

from __future__ import annotations

import argparse
import json
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
    args = parser.parse_args()
    spark, settings = profiled_session(args.lakehouse, args.conf_dir)
    try:
        lh = Lakehouse(spark, settings)
        cfg = load_gold_config(settings.conf_dir)
        traits = load_traits_config(cfg.inputs, settings.conf_dir)
        as_of = args.as_of
        if as_of is None and lh.exists("ops", "gold_state"):
            as_of = lh.read("ops", "gold_state").orderBy(F.desc("recorded_at")).first().as_of
        started = time.time()
        result = build_gold(spark, lh, cfg, traits, f"bench-{int(started)}", as_of=as_of, full=not args.incremental)
        seconds = time.time() - started
        print(json.dumps({
            "seconds": round(seconds, 1),
            "as_of": str(as_of),
            **result,
            **slowest_executions(spark, args.top),
        }, indent=2))
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
