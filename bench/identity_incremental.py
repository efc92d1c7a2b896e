"""An events-only day: incremental resolution against a full one on the same lakehouse.

    .venv/bin/python bench/identity_incremental.py <lakehouse root> [--fraction 0.01] [--conf-dir conf]

Needs a lakehouse that has been resolved once (a ``bench/pipeline.py`` work dir, or a demo run).
Appends a sample of ``silver.events`` (``--fraction`` of its rows, new record keys, one day later:
the shape of a day of new traffic from known people) to ``silver.events`` and commits it, then
runs ``cdp resolve --incremental`` and, for comparison, a forced full resolution of the same
inputs. The two must give the same identifiers and customers (the test suite checks every
published table). Prints JSON: seconds of each run, the inputs' modes, identifiers, customers.
Writes to the lakehouse it is given: use a copy you can throw away.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from pyspark.sql import functions as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cdp_lib.config import load_settings  # noqa: E402
from cdp_lib.identity.config import load_identity_config  # noqa: E402
from cdp_lib.identity.resolve import run_resolve  # noqa: E402
from cdp_lib.lakehouse import Lakehouse  # noqa: E402
from cdp_lib.session import build_session  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("lakehouse")
    parser.add_argument("--fraction", type=float, default=0.01)
    parser.add_argument("--conf-dir", default=str(Path(__file__).resolve().parent.parent / "conf"))
    args = parser.parse_args()
    settings = load_settings("local", args.conf_dir)
    settings = settings.model_copy(update={"lakehouse": settings.lakehouse.model_copy(update={"root": args.lakehouse})})
    spark = build_session(settings)
    lh = Lakehouse(spark, settings)
    cfg = load_identity_config(settings.conf_dir)
    # Made up to date first: the incremental run below must start from a run of this code.
    run_resolve(spark, lh, cfg)
    stamp = str(int(time.time()))
    new = (
        lh.read("silver", "events").sample(fraction=args.fraction, seed=42)
        .withColumn("_record_key", F.concat("_record_key", F.lit(f"-bench{stamp}")))
        .withColumn("event_ts", F.col("event_ts") + F.expr("INTERVAL 1 DAY"))
        .localCheckpoint()
    )
    appended = new.count()
    new.write.format("delta").mode("append").save(lh.path("silver", "events"))
    out = {"appended_events": appended}
    for mode, kwargs in (("incremental", {"incremental": True}), ("full", {"force": True})):
        t = time.time()
        result = run_resolve(spark, lh, cfg, **kwargs)
        out[mode] = {"seconds": round(time.time() - t, 1), "inputs": result.get("inputs"),
                     "identifiers": result["identifiers"], "customers": result["clusters"]}
    print(json.dumps(out, indent=2))
    spark.stop()
    return 0 if out["incremental"]["customers"] == out["full"]["customers"] else 1


if __name__ == "__main__":
    sys.exit(main())
