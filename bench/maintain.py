"""`cdp maintain` on an existing lakehouse: wall time, files and bytes it frees.

    flock /tmp/cdp-spark.lock .venv/bin/python bench/maintain.py <lakehouse root> [--retention-hours H] [--dry-run]

Runs :func:`cdp_lib.maintenance.maintain_lakehouse` over every table of ``<lakehouse root>`` with the
shipped local config, the retention overridden by ``--retention-hours`` (0: everything no current
version uses goes, as a week-old lakehouse at the default would lose its week-old files). Prints JSON:
seconds, the summary, bytes under the root before and after, and each table's figures (the JSON
follows the "Deleted N files" lines Delta prints for each VACUUM). Writes to the
lakehouse: the retention property, compactions, VACUUM (use a copy you can lose).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from cdp_lib.config import load_settings  # noqa: E402
from cdp_lib.lakehouse import Lakehouse  # noqa: E402
from cdp_lib.maintenance import maintain_lakehouse  # noqa: E402
from cdp_lib.session import build_session  # noqa: E402


def _du(path: str) -> int:
    return int(subprocess.run(["du", "-sb", path], capture_output=True, text=True, check=True).stdout.split()[0])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("lakehouse")
    parser.add_argument("--retention-hours", type=int, default=None)
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args()
    settings = load_settings("local", PROJECT / "conf")
    update = {"root": args.lakehouse}
    if args.retention_hours is not None:
        update["retention_hours"] = args.retention_hours
    settings = settings.model_copy(update={"lakehouse": settings.lakehouse.model_copy(update=update)})
    spark = build_session(settings)
    lh = Lakehouse(spark, settings)
    before = _du(args.lakehouse)
    started = time.time()
    summary = maintain_lakehouse(lh, dry_run=args.dry_run)
    seconds = round(time.time() - started, 1)
    log = lh.read("ops", "run_log").where(f"run_id = '{summary['run_id']}'").first()
    per_table = json.loads(log.details)["per_table"]
    print(json.dumps({"seconds": seconds, "bytes_before": before, "bytes_after": _du(args.lakehouse),
                      "summary": summary, "per_table": per_table}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
