"""Identity resolution on an existing lakehouse: wall time and where it goes.

    flock /tmp/cdp-spark.lock .venv/bin/python bench/identity_resolve.py <lakehouse root> [--incremental] [--top 25]

Runs the ``resolve`` stage (``run_resolve``, forced: a re-run resolves again) on the silver tables of
``<lakehouse root>`` with the shipped local config, then lists the Spark SQL executions that took
longest, each labelled with the ``cdp_lib`` line whose action started it (read from the Spark UI's
REST API, which this script switches on). Prints JSON: seconds, identifiers, customers, the
executions. The first run on a lakehouse is a first resolution (nothing to merge into); later ones
are re-runs over the published map. Writes to the lakehouse: the published identity tables.
"""

from __future__ import annotations

import argparse
import functools
import inspect
import json
import sys
import time
import urllib.request
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from delta.tables import DeltaMergeBuilder  # noqa: E402
from pyspark.sql import DataFrameWriter  # noqa: E402
from pyspark.sql.classic.dataframe import DataFrame  # noqa: E402

from cdp_lib.config import load_settings  # noqa: E402
from cdp_lib.identity.config import load_identity_config  # noqa: E402
from cdp_lib.identity.resolve import run_resolve  # noqa: E402
from cdp_lib.lakehouse import Lakehouse  # noqa: E402
from cdp_lib.session import build_session  # noqa: E402

UI_PORT = 4077


def _caller() -> str:
    for frame in inspect.stack()[2:]:
        # the first cdp_lib line above generic helpers (a checkpoint helper names no step)
        if "/cdp_lib/" in frame.filename and not frame.filename.endswith("/cdp_lib/partitioning.py"):
            return f"{frame.filename.split('/cdp_lib/')[1]}:{frame.lineno} {frame.function}"
    return "?"


def label_actions(spark) -> None:
    """Name every Spark action after the cdp_lib line that called it (the UI shows that name)."""
    sc = spark.sparkContext

    def wrap(cls, name):
        original = getattr(cls, name)

        @functools.wraps(original)
        def labelled(self, *args, **kwargs):
            sc.setJobDescription(f"{_caller()} {name}")
            return original(self, *args, **kwargs)

        setattr(cls, name, labelled)

    for name in ("localCheckpoint", "count", "collect", "first", "take", "toArrow"):
        wrap(DataFrame, name)
    wrap(DataFrameWriter, "save")
    wrap(DeltaMergeBuilder, "execute")


def profiled_session(lakehouse: str, conf_dir: str):
    """(spark, settings) for ``lakehouse`` with the shipped local config, the UI's REST API on and
    every action labelled (:func:`label_actions`)."""
    settings = load_settings("local", conf_dir)
    settings = settings.model_copy(update={"lakehouse": settings.lakehouse.model_copy(update={"root": lakehouse})})
    spark = build_session(settings, {"spark.ui.enabled": "true", "spark.ui.port": str(UI_PORT)})
    label_actions(spark)
    return spark, settings


def slowest_executions(spark, top: int) -> dict:
    """Total seconds of the session's Spark SQL executions and the ``top`` slowest, with their labels."""
    app = spark.sparkContext.applicationId
    url = f"http://127.0.0.1:{UI_PORT}/api/v1/applications/{app}/sql?details=false&length=100000"
    with urllib.request.urlopen(url) as response:
        executions = json.load(response)
    executions.sort(key=lambda e: -e["duration"])
    return {
        "sql_seconds_total": round(sum(e["duration"] for e in executions) / 1000, 1),
        "slowest": [f'{e["duration"] / 1000:.1f}s {e["description"]}' for e in executions[:top]],
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("lakehouse")
    parser.add_argument("--incremental", action="store_true")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--conf-dir", default=str(PROJECT / "conf"))
    args = parser.parse_args()
    spark, settings = profiled_session(args.lakehouse, args.conf_dir)
    lh = Lakehouse(spark, settings)
    cfg = load_identity_config(settings.conf_dir)
    started = time.time()
    result = run_resolve(spark, lh, cfg, incremental=args.incremental, force=True)
    seconds = time.time() - started
    print(json.dumps({
        "seconds": round(seconds, 1),
        "identifiers": result["identifiers"],
        "customers": result["clusters"],
        "incremental": result["incremental"],
        "inputs": result.get("inputs"),
        **slowest_executions(spark, args.top),
    }, indent=2))
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
