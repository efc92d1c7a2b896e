"""``cdp maintain``: keep the lakehouse's storage bounded without taking away what its readers need.

Every pipeline run leaves files that no current table version uses: the identity graph's tables
are rewritten whole, MERGEs rewrite files (or mark rows deleted in them), compaction replaces small
files. Delta keeps them for time travel until a VACUUM removes them, so without one a lakehouse grows
by about the size of its identity graph every day (several GB a day at 1M people: an estimate).

For every Delta table of every layer:

1. Its file retention (``delta.deletedFileRetentionDuration``) is set to ``lakehouse.retention_hours``
   (an ALTER TABLE commit the first time; later runs find it set). A plain ``VACUUM`` run by anyone
   else then keeps the same horizon.
2. A silver, gold or ops table made of many small files (at least ``compact_min_files`` files that
   average under ``small_file_mb``: the run log's and the state tables' daily appends, merged tables)
   is compacted (OPTIMIZE: no data change, nothing in the change feed). Bronze is not: it is
   append-only, so VACUUM never removes one of its files and every past snapshot stays readable,
   which silver relies on when it diffs two bronze snapshots because a change feed cannot be read.
3. VACUUM removes the files no version younger than the retention uses.

One reader has no way around an expired version: an ``incremental`` export destination cuts its next
drop (adds and removes) against the gold versions of its last successful drop. So the retention of
gold.segment_membership and gold.customer_profile is raised, when needed, to the age of the oldest
version such a drop still needs plus ``retention_hours`` (at least a day: room until the next
maintenance): an export that keeps failing for a while can still cut its drop once it recovers. Only
the destinations conf/destinations.yaml declares ``incremental`` count. Past Delta's log retention
(30 days) the version's commit is gone and nothing holds it; the export then sends a full-refresh
drop (see cdp_lib/activation/export.py).

What the other readers need: the incremental stages read a table's change feed since the version they
last read. :meth:`cdp_lib.lakehouse.Lakehouse.changes` refuses a range whose first commit is older
than the retention, since VACUUM may have removed files it needs, and the stage then recomputes
from the table (silver diffs bronze snapshots, identity rebuilds the input, gold recomputes every
profile). So a VACUUM never makes a later run fail: the first run after a pause longer than the
retention is a full one. Time travel reaches back as far as the retention.

Run it when no pipeline run is writing (say, weekly from cron, after the nightly run): its
compactions and its first retention change are commits to tables a running stage may be writing.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

from pyspark.sql import functions as F

from cdp_lib.errors import CdpError
from cdp_lib.lakehouse import LAYERS, Lakehouse, describe_error
from cdp_lib.runlog import new_run_id, stage_run
from cdp_lib.session import temporary_conf

__all__ = ["maintain_lakehouse", "RETENTION_PROPERTY"]

log = logging.getLogger(__name__)

RETENTION_PROPERTY = "delta.deletedFileRetentionDuration"


def _path_sql(lakehouse: Lakehouse, layer: str, table: str) -> str:
    return "delta.`" + lakehouse.path(layer, table).replace("`", "``") + "`"


def _incremental_destinations(lakehouse: Lakehouse) -> list[str]:
    from cdp_lib.activation.destinations import DestinationsConfig
    from cdp_lib.config import load_model

    conf = Path(lakehouse.settings.conf_dir)
    if not (conf / "destinations.yaml").exists():
        return []
    return [d.name for d in load_model(DestinationsConfig, "destinations", conf).destinations
            if d.mode == "incremental"]


def export_held_versions(lakehouse: Lakehouse) -> dict[str, int]:
    """gold table -> the oldest version an incremental export destination's next drop is cut against:
    the versions of the last successful drop of each segment of each destination that
    conf/destinations.yaml declares ``incremental`` (one removed from it holds nothing back)."""
    names = _incremental_destinations(lakehouse)
    if not names or not lakehouse.exists("ops", "activation_log"):
        return {}
    last_ok = (
        lakehouse.read("ops", "activation_log")
        .where((F.col("status") == "success") & F.col("destination").isin(names) & (F.col("mode") == "incremental"))
        .groupBy("destination", "segment")
        .agg(F.max_by("membership_version", "ended_at").alias("m"), F.max_by("profile_version", "ended_at").alias("p"))
        .agg(F.min("m").alias("m"), F.min("p").alias("p"))
        .first()
    )
    held = {"segment_membership": last_ok.m, "customer_profile": last_ok.p} if last_ok else {}
    return {table: int(v) for table, v in held.items() if v is not None}


def _retention_hours(lakehouse: Lakehouse, layer: str, table: str, held: dict[str, int]) -> int:
    """``lakehouse.retention_hours``, or more for a gold table whose older version an export still needs."""
    hours = lakehouse.settings.lakehouse.retention_hours
    if layer != "gold" or table not in held:
        return hours
    committed = lakehouse.commit_millis(layer, table, held[table])
    if committed is None:  # the log no longer has it: nothing left to hold
        return hours
    age = max(0.0, time.time() * 1000 - committed) / 3_600_000
    # room until the next maintenance (at least a day): the version keeps ageing meanwhile
    needed = math.ceil(age) + max(hours, 24)
    if needed > hours:
        log.info("maintain: %s.%s keeps %d hours: an incremental export's next drop reads a version %.0f hours old",
                 layer, table, needed, age)
    return needed


def _maintain_table(lakehouse: Lakehouse, layer: str, table: str, dry_run: bool, held: dict[str, int]) -> dict:
    settings = lakehouse.settings.lakehouse
    hours = _retention_hours(lakehouse, layer, table, held)
    retention = f"interval {hours} hours"
    files_before, bytes_before = lakehouse.storage(layer, table)
    detail = lakehouse.delta(layer, table).detail().select("properties", "numFiles", "sizeInBytes").first()
    out = {"files_before": files_before, "bytes_before": bytes_before, "retention_hours": hours,
           "retention_set": False, "compacted": False}
    if dry_run:
        # what VACUUM at this retention would delete now (DRY RUN lists them; nothing is written)
        # (Delta's check against a RETAIN shorter than the table's current retention is off for it: a
        # dry run deletes nothing, and the real run sets the retention before it vacuums.)
        with temporary_conf(lakehouse.spark, {"spark.databricks.delta.retentionDurationCheck.enabled": "false"}):
            would = lakehouse.spark.sql(f"VACUUM {_path_sql(lakehouse, layer, table)} RETAIN {hours} HOURS DRY RUN")
            out["files_to_remove"] = would.count()
        return out
    if (detail.properties or {}).get(RETENTION_PROPERTY) != retention:
        out["retention_set"] = lakehouse.set_properties(layer, table, {RETENTION_PROPERTY: retention})
    small = settings.small_file_mb * 2**20
    if (layer != "bronze" and settings.compact_min_files and detail.numFiles >= settings.compact_min_files
            and detail.sizeInBytes < detail.numFiles * small):
        before = lakehouse.version(layer, table)
        lakehouse.delta(layer, table).optimize().executeCompaction()
        out["compacted"] = lakehouse.version(layer, table) != before
    lakehouse.delta(layer, table).vacuum()  # at the table's retention, set above
    out["files_after"], out["bytes_after"] = lakehouse.storage(layer, table)
    return out


def maintain_lakehouse(lakehouse: Lakehouse, *, run_id: str | None = None, dry_run: bool = False,
                       layers: tuple[str, ...] = LAYERS) -> dict:
    """Retention, compaction and VACUUM for every table of ``layers`` (see the module docstring).

    ``dry_run``: change nothing; report per table how many files a VACUUM at the retention would remove
    now (files a compaction would free are not counted). A table that fails is reported and the others
    are still maintained; the stage then fails, naming the tables. Recorded in ``ops.run_log`` as
    stage ``maintain`` (figures only: table names, file counts, bytes).
    """
    run_id = run_id or new_run_id()
    spark = lakehouse.spark
    hours = lakehouse.settings.lakehouse.retention_hours
    if hours < 24 and not dry_run:
        log.warning("maintain: a retention of %d hours: a run reading a table version older than that (a long "
                    "job, time travel) may find its files gone", hours)
    # VACUUM lists a table's files with one task per spark.sql.sources.parallelPartitionDiscovery.parallelism
    # (10,000 by default): 10,000 tasks for a table of a few dozen files took about 45 s a table on 2 cores.
    # The session's default parallelism (its cores) lists any of the lakehouse's tables in one wave.
    parallelism = str(max(1, spark.sparkContext.defaultParallelism))
    listing = {"spark.sql.sources.parallelPartitionDiscovery.parallelism": parallelism}
    run_log = lakehouse.path("ops", "run_log")
    with temporary_conf(spark, listing), stage_run(spark, run_log, run_id, "maintain") as run:
        tables, failed = {}, {}
        held = export_held_versions(lakehouse)
        for layer in layers:
            for table in lakehouse.tables(layer):
                name = f"{layer}.{table}"
                started = time.monotonic()
                try:
                    tables[name] = _maintain_table(lakehouse, layer, table, dry_run, held)
                except Exception as exc:  # the others are still maintained; the stage fails below
                    failed[name] = describe_error(exc)
                    log.warning("maintain: %s failed (%s)", name, failed[name])
                    continue
                t = tables[name]
                t["seconds"] = round(time.monotonic() - started, 1)
                if dry_run:
                    log.info("maintain: %s: %d files to remove (dry run)", name, t["files_to_remove"])
                else:
                    log.info("maintain: %s: %d -> %d files, %.1f -> %.1f MB%s%s in %.1fs", name, t["files_before"],
                             t["files_after"], t["bytes_before"] / 2**20, t["bytes_after"] / 2**20,
                             ", compacted" if t["compacted"] else "", ", retention set" if t["retention_set"] else "",
                             t["seconds"])
        summary = {"run_id": run_id, "dry_run": dry_run, "retention_hours": hours, "tables": len(tables),
                   "failed": failed, "export_held_versions": held}
        if dry_run:
            summary["files_to_remove"] = sum(t["files_to_remove"] for t in tables.values())
        else:
            summary.update({
                "files_removed": sum(t["files_before"] - t["files_after"] for t in tables.values()),
                "bytes_freed": sum(t["bytes_before"] - t["bytes_after"] for t in tables.values()),
                "compacted": sorted(n for n, t in tables.items() if t["compacted"]),
                "retention_set": sum(t["retention_set"] for t in tables.values()),
            })
        run.details = {**summary, "per_table": tables}
        if failed:
            raise CdpError(f"maintain: {len(failed)} table(s) failed: "
                           + ", ".join(f"{n} ({e})" for n, e in sorted(failed.items())))
    return summary
