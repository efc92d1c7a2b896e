"""Drop each destination's segments as files: ``<prefix>/<destination>/<segment>/<run_id>/``.

A drop is ``part-*`` files (written by Spark, through s3a for S3), then ``manifest.json``,
then ``_SUCCESS`` last, so a consumer waiting for ``_SUCCESS`` never reads a partial drop.
Every attempt appends one row to ``ops.activation_log``:

* a run id whose ``_SUCCESS`` exists is skipped (nothing is rewritten);
* a failed or interrupted attempt leaves no ``_SUCCESS``; the next run deletes its partial
  directory and writes the drop again;
* ``incremental`` drops hold the adds and removes since the last *successful* drop of the
  same destination and segment, found in the log together with the Delta versions of
  gold.segment_membership and gold.customer_profile it was cut from (time travel).

The audience of a drop is the segment's current members who pass the destination's
consent filter, so a withdrawn consent is sent as a ``remove``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from cdp_lib.activation.destinations import Destination, DestinationsConfig, consent_column, shape_fields
from cdp_lib.activation.manifest import MANIFEST, SUCCESS, build_manifest, manifest_bytes
from cdp_lib.activation.membership import current_members
from cdp_lib.activation.s3 import ObjectStore, join_key, store_for
from cdp_lib.errors import ExportError
from cdp_lib.lakehouse import Lakehouse, VersionUnavailable
from cdp_lib.runlog import stage_run

__all__ = ["ACTIVATION_LOG_SCHEMA", "audience", "incremental_rows", "export_segments", "Step"]

log = logging.getLogger(__name__)

# Called after each step of a drop ("data_written", "manifest_written") with the drop URI;
# lets operators (and tests) hook in, e.g. to inject a fault between steps.
Step = Callable[[str, str], None]

ACTIVATION_LOG_SCHEMA = T.StructType(
    [
        T.StructField("destination", T.StringType(), False),
        T.StructField("segment", T.StringType(), False),
        T.StructField("run_id", T.StringType(), False),
        T.StructField("status", T.StringType(), False),  # success | failed
        T.StructField("mode", T.StringType(), False),
        T.StructField("uri", T.StringType(), False),
        T.StructField("rows", T.LongType(), True),
        T.StructField("rows_added", T.LongType(), True),
        T.StructField("rows_removed", T.LongType(), True),
        T.StructField("membership_version", T.LongType(), True),
        T.StructField("profile_version", T.LongType(), True),
        T.StructField("previous_run_id", T.StringType(), True),
        T.StructField("started_at", T.TimestampType(), False),
        T.StructField("ended_at", T.TimestampType(), False),
        T.StructField("error", T.StringType(), True),
    ]
)


def audience(membership: DataFrame, profile: DataFrame, segment: str, consent: str) -> DataFrame:
    """Profile rows of the segment's current members who pass the consent filter."""
    members = current_members(membership).where(F.col("segment") == segment).select("customer_id").distinct()
    return profile.join(members, "customer_id", "left_semi").where(consent_column(consent))


def incremental_rows(now: DataFrame, before: DataFrame) -> DataFrame:
    """Adds (in ``now`` only, current values) and removes (in ``before`` only, values as sent then).

    Both frames are audiences with the same columns; the result has an ``action`` column.
    """
    adds = now.join(before.select("customer_id"), "customer_id", "left_anti").withColumn("action", F.lit("add"))
    removes = before.join(now.select("customer_id"), "customer_id", "left_anti").withColumn("action", F.lit("remove"))
    return adds.unionByName(removes)


def results_error(results: list[dict[str, Any]]) -> str:
    return next((r["error"] for r in results if r["status"] == "failed"), "")


def _describe(exc: BaseException) -> str:
    """Type and first line of an error; for a JVM error, its root cause (S3 codes, not data)."""
    java = getattr(exc, "java_exception", None)
    if java is not None:
        try:
            root = java
            while root.getCause() is not None and root.getCause() != root:
                root = root.getCause()
            text = f"{java.getClass().getSimpleName()} caused by {root.toString()}"
        except Exception:  # the JVM itself may be gone
            text = type(exc).__name__
    else:
        text = f"{type(exc).__name__}: {str(exc)}"
    return (text.strip().splitlines() or [""])[0][:500]


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, timezone.utc).replace(tzinfo=None)


class _Log:
    """ops.activation_log: read once per run, appended one row per drop attempt."""

    def __init__(self, lakehouse: Lakehouse):
        self.spark = lakehouse.spark
        self.path = lakehouse.path("ops", "activation_log")
        self.rows = (
            [r.asDict() for r in lakehouse.read("ops", "activation_log").collect()]
            if lakehouse.exists("ops", "activation_log") else []
        )

    def append(self, row: dict[str, Any]) -> None:
        values = tuple(row.get(f.name) for f in ACTIVATION_LOG_SCHEMA.fields)
        self.spark.createDataFrame([values], ACTIVATION_LOG_SCHEMA).write.format("delta").mode("append").save(self.path)
        self.rows.append(row)

    def of(self, dest: str, segment: str) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["destination"] == dest and r["segment"] == segment]

    def last_success(self, dest: str, segment: str) -> dict[str, Any] | None:
        ok = [r for r in self.of(dest, segment) if r["status"] == "success"]
        return max(ok, key=lambda r: r["ended_at"]) if ok else None


def _at_version(lakehouse: Lakehouse, table: str, version: int) -> DataFrame:
    """gold.<table> as of a Delta version (time travel). Raises VersionUnavailable once it is older than
    the table's file retention (`cdp maintain` holds the versions incremental destinations need)."""
    return lakehouse.snapshot("gold", table, version)


def _write_data(df: DataFrame, dest: Destination, uri: str) -> None:
    out = df.coalesce(1) if dest.partitions == 1 else df.repartition(dest.partitions)
    out = out.sortWithinPartitions(*[c for c in df.columns if c != "action"][:1])
    writer = (
        out.write.mode("overwrite")
        # _SUCCESS is ours, written after the manifest; Spark's committer must not write one first.
        .option("mapreduce.fileoutputcommitter.marksuccessfuljobs", "false")
    )
    if dest.max_rows_per_file:
        writer = writer.option("maxRecordsPerFile", dest.max_rows_per_file)
    if dest.format == "csv":
        # RFC 4180 quoting ("" inside quotes), which ad platforms' CSV parsers expect.
        writer.option("header", "true").option("escape", '"').csv(uri)
    elif dest.format == "jsonl":
        writer.option("ignoreNullFields", "false").json(uri)
    else:
        writer.parquet(uri)


def _file_counts(spark: SparkSession, dest: Destination, uri: str, incremental: bool) -> dict[str, dict[str, int]]:
    """Rows per file (and per action) read back from the written files."""
    reader = spark.read
    if dest.format == "csv":
        df = reader.option("header", "true").option("escape", '"').option("multiLine", "true").csv(uri)
    elif dest.format == "jsonl":
        df = reader.json(uri)
    else:
        df = reader.parquet(uri)
    action = F.col("action") if incremental else F.lit("add")
    out: dict[str, dict[str, int]] = {}
    for r in df.groupBy(F.col("_metadata.file_name").alias("f"), action.alias("a")).count().collect():
        out.setdefault(r["f"], {})[r["a"]] = r["count"]
    return out


def _cleanup(store: ObjectStore, base: str, dest: Destination, segment: str, run_id: str, log_: _Log) -> None:
    """Delete partial directories of failed attempts since the last success (and of this run id)."""
    last = log_.last_success(dest.name, segment)
    failed = {
        r["run_id"] for r in log_.of(dest.name, segment)
        if r["status"] == "failed" and (last is None or r["ended_at"] >= last["ended_at"])
    } | {run_id}
    for rid in sorted(failed):
        run_dir = join_key(base, dest.name, segment, rid)
        if not store.exists(join_key(run_dir, SUCCESS)):
            n = store.delete_prefix(run_dir)
            if n:
                log.info("drop %s/%s/%s: removed %d files of a partial attempt", dest.name, segment, rid, n)


def _drop(
    lakehouse: Lakehouse,
    dest: Destination,
    segment: str,
    run_id: str,
    inputs: dict[str, Any],
    log_: _Log,
    on_step: Step | None,
) -> dict[str, Any]:
    spark = lakehouse.spark
    store, base = store_for(spark, dest, lakehouse.settings.s3)
    run_dir = join_key(base, dest.name, segment, run_id)
    drop_uri = store.uri(run_dir)
    started = time.time()
    if store.exists(join_key(run_dir, SUCCESS)):
        if not any(r["run_id"] == run_id and r["status"] == "success" for r in log_.of(dest.name, segment)):
            # _SUCCESS was written but the log row was not: restore it from the manifest.
            m = json.loads(store.get_bytes(join_key(run_dir, MANIFEST)))
            log_.append({
                "destination": dest.name, "segment": segment, "run_id": run_id, "status": "success",
                "mode": dest.mode, "uri": drop_uri, "rows": m["rows"],
                "rows_added": m["counts"].get("add"), "rows_removed": m["counts"].get("remove"),
                "membership_version": m["inputs"]["gold.segment_membership"]["delta_version"],
                "profile_version": m["inputs"]["gold.customer_profile"]["delta_version"],
                "previous_run_id": m["previous_run_id"], "started_at": _utc(started), "ended_at": _utc(time.time()),
            })
        log.info("drop %s/%s/%s already complete: nothing rewritten", dest.name, segment, run_id)
        return {"destination": dest.name, "segment": segment, "status": "skipped", "uri": drop_uri}

    _cleanup(store, base, dest, segment, run_id, log_)
    now = audience(inputs["membership"], inputs["profile"], segment, dest.consent)
    previous = log_.last_success(dest.name, segment) if dest.mode == "incremental" else None
    full_refresh = False
    if dest.mode == "incremental" and previous is not None:
        try:
            before = audience(
                _at_version(lakehouse, "segment_membership", previous["membership_version"]),
                _at_version(lakehouse, "customer_profile", previous["profile_version"]),
                segment, dest.consent,
            )
        except VersionUnavailable as exc:
            # The last drop's versions expired (exports failing for longer than the retention): the
            # difference is unknown, so this drop sends the whole audience and says it replaces it.
            log.warning("drop %s/%s/%s: the last drop's gold versions can no longer be read (%s); a full "
                        "refresh drop is sent", dest.name, segment, run_id, exc)
            full_refresh = True
            rows = now.withColumn("action", F.lit("add"))
        else:
            rows = incremental_rows(now, before)
    elif dest.mode == "incremental":
        rows = now.withColumn("action", F.lit("add"))  # first drop: everyone is an add
    else:
        rows = now
    shaped = shape_fields(rows, dest)
    _write_data(shaped, dest, drop_uri)
    if on_step:
        on_step("data_written", drop_uri)

    files = []
    for key in store.list(run_dir):
        name = key.rsplit("/", 1)[-1]
        if name.startswith("part-"):  # not Spark's .crc side files on a local folder
            digest, size = store.sha256(key)
            files.append({"name": name, "bytes": size, "sha256": digest})
    per_file = _file_counts(spark, dest, drop_uri, dest.mode == "incremental")
    for f in files:
        f["rows"] = sum(per_file.get(f["name"], {}).values())
    counts: dict[str, int] = {}
    for actions in per_file.values():
        for a, n in actions.items():
            counts[a] = counts.get(a, 0) + n
    if dest.mode == "full":
        counts = {"add": counts.get("add", 0)}
    else:
        counts = {"add": counts.get("add", 0), "remove": counts.get("remove", 0)}
    if sum(f["rows"] for f in files) != sum(counts.values()):
        raise ExportError(f"drop {dest.name}/{segment}/{run_id}: rows read back do not match the files listed")
    manifest = build_manifest(
        dest, segment, run_id, drop_uri, shaped.schema, files,
        {"gold.segment_membership": inputs["membership_version"], "gold.customer_profile": inputs["profile_version"]},
        counts, previous["run_id"] if previous else None, full_refresh=full_refresh,
    )
    store.put_bytes(join_key(run_dir, MANIFEST), manifest_bytes(manifest))
    if on_step:
        on_step("manifest_written", drop_uri)
    store.put_bytes(join_key(run_dir, SUCCESS), b"")
    log_.append({
        "destination": dest.name, "segment": segment, "run_id": run_id, "status": "success", "mode": dest.mode,
        "uri": drop_uri, "rows": manifest["rows"], "rows_added": counts.get("add"),
        "rows_removed": counts.get("remove"), "membership_version": inputs["membership_version"],
        "profile_version": inputs["profile_version"], "previous_run_id": manifest["previous_run_id"],
        "started_at": _utc(started), "ended_at": _utc(time.time()),
    })
    log.info("drop %s/%s/%s: %d rows in %d files", dest.name, segment, run_id, manifest["rows"], len(files))
    return {"destination": dest.name, "segment": segment, "status": "success", "uri": drop_uri,
            "rows": manifest["rows"], "counts": counts, "files": len(files)}


def export_segments(
    lakehouse: Lakehouse,
    destinations: DestinationsConfig,
    run_id: str,
    *,
    only_destinations: list[str] | None = None,
    only_segments: list[str] | None = None,
    on_step: Step | None = None,
) -> list[dict[str, Any]]:
    """Write one drop per (destination, segment); returns a summary per drop.

    Every drop is attempted; if any failed, :class:`ExportError` is raised at the end
    naming them (the others are complete and logged).
    """
    spark = lakehouse.spark
    for table in ("segment_membership", "customer_profile"):
        if not lakehouse.exists("gold", table):
            raise ExportError(f"gold.{table} does not exist yet: build it first (cdp segments needs the profile)")
    mv = lakehouse.version("gold", "segment_membership")
    pv = lakehouse.version("gold", "customer_profile")
    # Pin both inputs to one version for the whole run: every drop of a run is cut from the same data.
    inputs = {
        "membership": _at_version(lakehouse, "segment_membership", mv),
        "profile": _at_version(lakehouse, "customer_profile", pv),
        "membership_version": mv,
        "profile_version": pv,
    }
    log_ = _Log(lakehouse)
    results, failed = [], []
    for dest in destinations.destinations:
        if only_destinations and dest.name not in only_destinations:
            continue
        for segment in dest.segments:
            if only_segments and segment not in only_segments:
                continue
            started = time.time()
            try:
                label = f"{dest.name}/{segment}"
                with stage_run(spark, lakehouse.path("ops", "run_log"), run_id, "export", label) as run:
                    result = _drop(lakehouse, dest, segment, run_id, inputs, log_, on_step)
                    run.rows_out = result.get("rows")
                    run.status = "skipped" if result["status"] == "skipped" else "success"
                    run.details = {k: v for k, v in result.items() if k in ("uri", "counts", "files")}
                results.append(result)
            except Exception as exc:  # one failed drop must not stop the others
                error = _describe(exc)
                log_.append({
                    "destination": dest.name, "segment": segment, "run_id": run_id, "status": "failed",
                    "mode": dest.mode, "uri": dest.uri, "membership_version": mv, "profile_version": pv,
                    "started_at": _utc(started), "ended_at": _utc(time.time()), "error": error,
                })
                results.append({"destination": dest.name, "segment": segment, "status": "failed", "error": error})
                failed.append(f"{dest.name}/{segment}")
    if failed:
        raise ExportError(
            f"run {run_id}: {len(failed)} drop(s) failed ({', '.join(failed)}); they have no _SUCCESS "
            f"and are redone by the next run (see ops.activation_log); first error: {results_error(results)}"
        )
    return results
