"""Bronze ingestion: every source of ``conf/sources.yaml`` into an append-only Delta table.

Per source and run, one *batch*:

1. **Plan** (one commit to ``ops.bronze_file_log`` for all sources of the run): the files never logged before, with size
   and SHA-256 of their bytes; a file whose bytes were already ingested (a re-delivery under
   another name) is logged as ``duplicate_of`` and not read. A JDBC source plans a watermark
   window ``(last committed upper bound, current max(updated_at)]`` instead.
2. **Write**: the batch's rows split into ``bronze.<source>`` (contract columns + lineage) and
   ``bronze.<source>_quarantine`` (raw text, reason, file, batch id). A new batch of files is
   read twice, never cached: all files for bronze, then only the files that had bad rows for
   quarantine (JSON lines: one cheap scan of the text first, see :func:`_write_new_files`). A
   JDBC window or a replayed batch is read once and persisted for both writes. Each write is
   one Delta commit carrying ``txnAppId=bronze:<source>`` and ``txnVersion=<batch seq>``: Delta
   records the pair in the same commit as the rows and silently skips a later
   write with a version it has already seen.
3. **Commit** (one commit to the file log at the end of the run, for every batch written): the
   same files with status ``committed`` and per-file row / quarantine counts.

A run killed anywhere (SIGKILL included) leaves planned batches without their commit rows.
The next run replays *those* plans, oldest first, not a new listing: the files are immutable, so the read is
the same, and a table that already committed the batch skips it through its txn version. So
bronze ends up exactly as after one clean run, nothing is ever deleted from bronze (its Change
Data Feed stays insert-only) and readers never see a batch twice.

Why not Structured Streaming ``availableNow`` with a checkpoint: its file source keeps its own
seen-files log by *path*, so a re-delivery under a new name is ingested again (no content
hash); one stream writes one sink, so bronze and quarantine would need ``foreachBatch``, where
two Delta writes are made idempotent with the very same txnAppId/txnVersion; and its metadata
lives outside the lakehouse tables. The file log gives the same exactly-once guarantee with one
place to query lineage (which file went into which batch) and the cost is measured in
docs/benchmarks.md (hashing reads every new byte once more; planning and committing are two
small Delta commits).

A run first replays the interrupted batches, then plans a new one, so one re-run after a kill
catches up completely. Limits: one writer per source at a time; drift *inside* a struct-typed
contract column is not rescued (declare free-form objects as ``map<string,string>``); Parquet
files of one batch whose footers disagree on a column's type raise SchemaContractError; a JDBC
row committed late with ``updated_at`` at or below an already recorded upper bound is missed
(the usual watermark caveat: keep the column set by the database at commit time).
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from dataclasses import replace
from datetime import datetime, timezone

from pyspark import StorageLevel
from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from cdp_lib.bronze.filelog import (
    Batch,
    LoggedFile,
    pending_batches,
    plan_file_batch,
    read_log,
    spark_path,
    write_log,
)
from cdp_lib.bronze.readers import (
    broken_line,
    json_reader_allowed,
    parse_json_lines,
    read_files,
    read_jdbc,
    read_json_fast,
    reparse_json_lines,
    scan_json_files,
)
from cdp_lib.bronze.sources import Source, SourcesConfig, contract_schema, source_location
from cdp_lib.errors import ConfigError
from cdp_lib.lakehouse import Lakehouse
from cdp_lib.lanes import HEAVY_BYTES, each_in_lanes
from cdp_lib.runlog import held_source_rows, new_run_id, stage_run
from cdp_lib.session import register_functions

__all__ = ["FILE_LOG_TABLE", "ingest_sources", "ingest_source", "quarantine_table"]

log = logging.getLogger(__name__)

FILE_LOG_TABLE = "bronze_file_log"
# Broken JSON lines re-parsed by hash in the quarantine pass at most; more re-parse their files.
HASH_FILTER_MAX = 200_000
# Broken JSON lines (of files the JSON reader takes) kept from pass 1 for quarantine, at most so
# many bytes in all (the scan knows the figure first); more are found again by hash.
COLLECT_MAX_BYTES = 64 << 20
# Files of a batch counted one by one as they are read (two counters each); more are counted
# by reading the written rows back.
PER_FILE_COUNTED = 16


def quarantine_table(source: str) -> str:
    return f"{source}_quarantine"


def ingest_sources(spark: SparkSession, lakehouse: Lakehouse, config: SourcesConfig,
                   names: list[str] | None = None, run_id: str | None = None,
                   parallel: int | None = None) -> dict[str, dict]:
    """Ingest every source (or ``names``), ``parallel`` (default: the config's) at once; returns
    ``{source: {files, rows, quarantined, ...}}``."""
    selected = [config.get(n) for n in names] if names else [s for s in config.sources if s.enabled]
    return _ingest(spark, lakehouse, selected, run_id or new_run_id(), parallel or config.parallel)


def _check_zones(spark: SparkSession, zoned: list[Source]) -> None:
    """Each ``timeZone`` as the JVM will read it (its zone database can lack a name Python's has):
    a ConfigError before anything is read, not a failed task half-way through a batch."""
    jvm = spark._jvm.java.time.ZoneId
    for source in zoned:
        try:
            jvm.of(source.time_zone, jvm.SHORT_IDS)
        except Exception:  # noqa: BLE001 - py4j wraps java.time's DateTimeException
            raise ConfigError("sources.yaml", f"{source.name}.options.timeZone",
                              f"{source.time_zone!r} is not a time zone this JVM knows") from None


def ingest_source(spark: SparkSession, lakehouse: Lakehouse, source: Source, run_id: str) -> dict:
    """One source's batch (and the replays of its interrupted batches, if any); writes a run-log row."""
    return _ingest(spark, lakehouse, [source], run_id)[source.name]


def _ingest(spark: SparkSession, lakehouse: Lakehouse, selected: list[Source], run_id: str,
            parallel: int = 1) -> dict[str, dict]:
    """One read of the file log, one commit of every source's new plan, each source's data
    (``parallel`` at once, the most bytes first, see :func:`cdp_lib.lanes.each_in_lanes`), then one
    commit of every batch written and one of the sources' run-log rows (two file-log commits per
    run, not per source).

    A failing source stops the run: the sources already being written finish, the batches
    written are committed, the plans not started stay planned and are replayed by the next run."""
    zoned = [s for s in selected if s.time_zone]
    if zoned:
        _check_zones(spark, zoned)
        register_functions(spark)  # cdp_to_timestamp, in a session not from build_session
    log_path = lakehouse.path("ops", FILE_LOG_TABLE)
    logged: dict[str, list] = {s.name: [] for s in selected}
    for row in read_log(spark, log_path):
        if row.source in logged:
            logged[row.source].append(row)
    plans = {}
    for source in selected:
        started = time.time()
        plans[source.name] = (_plan(spark, lakehouse, source, run_id, logged[source.name]), time.time() - started)
    new = [b for batches, _ in plans.values() for b in batches if not b.resumed]
    if new:
        write_log(spark, log_path, new, "planned", run_id)
    written: list[Batch] = []
    size = {s.name: sum(f.size or 0 for b in plans[s.name][0] for f in b.files) for s in selected}
    order = sorted(selected, key=lambda s: -size[s.name])  # the largest first
    try:
        with held_source_rows(spark, lakehouse.path("ops", "run_log")):
            done = each_in_lanes(
                order, lambda s: _ingest_planned(spark, lakehouse, s, run_id, *plans[s.name], written), parallel,
                name=lambda s: s.name, heavy=frozenset(n for n, b in size.items() if b >= HEAVY_BYTES), spark=spark,
                label="bronze")
        return {s.name: done[s.name] for s in selected}
    finally:
        if written:
            write_log(spark, log_path, written, "committed", run_id)


def _ingest_planned(spark: SparkSession, lakehouse: Lakehouse, source: Source, run_id: str, batches: list[Batch],
                    plan_s: float, written: list[Batch]) -> dict:
    """Write one source's planned batches (appended to ``written``); its run-log row."""
    started = time.time()
    with stage_run(spark, lakehouse.path("ops", "run_log"), run_id, "bronze", source.name) as run:
        schema = contract_schema(spark, source)
        summary = {"files": 0, "duplicates": 0, "rows": 0, "quarantined": 0, "batch_ids": [], "resumed": False}
        for batch in batches:
            done = _write_batch(spark, lakehouse, source, schema, batch)
            written.append(batch)
            for key in ("files", "duplicates", "rows", "quarantined"):
                summary[key] += done[key]
            summary["batch_ids"].append(batch.batch_id)
            summary["resumed"] = summary["resumed"] or batch.resumed
        summary["batch_id"] = summary["batch_ids"][-1] if summary["batch_ids"] else None
        summary["write_s"] = round(time.time() - started, 2)
        if summary["batch_ids"]:
            _register(spark, lakehouse, source)
        run.rows_in = summary["rows"] + summary["quarantined"]
        run.rows_out = summary["rows"]
        run.rows_quarantined = summary["quarantined"]
        run.details = {**summary, "plan_s": round(plan_s, 3)}
        if not summary["batch_ids"]:
            run.status = "skipped"
    return summary


def _register(spark: SparkSession, lakehouse: Lakehouse, source: Source) -> None:
    for layer, table in (("bronze", source.name), ("bronze", quarantine_table(source.name)), ("ops", FILE_LOG_TABLE)):
        # The catalog check is in memory; register() would load each Delta log again.
        if not _registered(spark, layer, table) and lakehouse.exists(layer, table):
            lakehouse.register(layer, table)


def _registered(spark: SparkSession, layer: str, table: str) -> bool:
    """In the catalog already (SHOW TABLES does not load the Delta log, unlike tableExists)."""
    try:
        return bool(spark.sql(f"SHOW TABLES IN {layer} LIKE '{table}'").take(1))
    except AnalysisException:  # the layer's database does not exist yet
        return False


def _plan(spark: SparkSession, lakehouse: Lakehouse, source: Source, run_id: str, rows: list) -> list[Batch]:
    """The interrupted batches to replay (if any), then a new batch of what arrived since (if any)."""
    batches = pending_batches(rows, source.name)
    for pending in batches:
        log.info("bronze/%s: replaying interrupted batch %s", source.name, pending.batch_id)
    if source.format == "jdbc":
        batch = _plan_jdbc(spark, source, rows, run_id, batches[-1] if batches else None)
    else:
        batch = plan_file_batch(spark, rows, source.name, source_location(source, lakehouse.settings.lakehouse.landing),
                                run_id)
    return batches + ([batch] if batch is not None else [])


def _plan_jdbc(spark: SparkSession, source: Source, rows: list, run_id: str, pending: Batch | None) -> Batch | None:
    """The window after the last committed one (or after ``pending``, replayed first)."""
    committed = [r for r in rows if r.status == "committed"]
    if pending is not None:
        low = pending.watermark_to
    else:
        low = max(committed, key=lambda r: r.batch_seq).watermark_to if committed else None
    wm = source.jdbc.watermark_column
    # The bound is the database's own text of max(watermark): compared back as a literal, it is
    # coerced to the column's type by the database, with no client time-zone conversion.
    probe = f"SELECT CAST(MAX({wm}) AS VARCHAR(64)) AS wm FROM {source.jdbc.relation} t"
    high = _jdbc_reader(spark, source).option("query", probe).load().first()["wm"]
    if high is None or high == low:
        return None
    seq = max((r.batch_seq for r in rows), default=-1) + 1
    return Batch(source.name, seq, f"{run_id}:{source.name}:{seq}", [], low, high)


def _jdbc_reader(spark: SparkSession, source: Source):
    reader = spark.read.format("jdbc").option("url", source.jdbc.url)
    for key, value in _jdbc_credentials(source).items():
        reader = reader.option(key, value)
    for key, value in source.options.items():
        reader = reader.option(key, str(value).lower() if isinstance(value, bool) else str(value))
    return reader


def _jdbc_credentials(source: Source) -> dict[str, str]:
    out = {}
    for key, env in (("user", source.jdbc.user_env), ("password", source.jdbc.password_env)):
        if env:
            if env not in os.environ:
                raise ConfigError("sources.yaml", f"{source.name}.jdbc.{key}_env",
                                  f"environment variable {env} is not set")
            out[key] = os.environ[env]
    return out


def _jdbc_query(source: Source, batch: Batch) -> str:
    wm = source.jdbc.watermark_column

    def lit(v: str) -> str:
        return "'" + v.replace("'", "''") + "'"

    where = f"{wm} <= {lit(batch.watermark_to)}"
    if batch.watermark_from is not None:
        where = f"{wm} > {lit(batch.watermark_from)} AND {where}"
    return f"SELECT * FROM {source.jdbc.relation} t WHERE {where}"


def _write_batch(spark: SparkSession, lakehouse: Lakehouse, source: Source, schema, batch: Batch) -> dict:
    if source.format != "jdbc" and batch.to_read and not batch.resumed:
        stats = _write_new_files(spark, lakehouse, source, schema, batch)
    elif source.format == "jdbc":
        parsed = read_jdbc(spark, source, schema, _jdbc_query(source, batch), _jdbc_credentials(source))
        stats = _write_cached(lakehouse, source, schema, batch, parsed)
    elif batch.to_read:
        stats = _write_cached(lakehouse, source, schema, batch, read_files(spark, source, schema, batch.to_read))
    else:
        stats = {}
    if source.format == "jdbc":
        n, q = next(iter(stats.values()), (0, 0))
        batch.files = [LoggedFile(None, rows=n, quarantined=q)]
    else:
        batch.files = [
            replace(f, rows=0, quarantined=0) if f.duplicate_of
            else replace(f, rows=stats.get(f.path, (0, 0))[0], quarantined=stats.get(f.path, (0, 0))[1])
            for f in batch.files
        ]
    return {
        "files": len(batch.to_read),
        "duplicates": len(batch.duplicates),
        "rows": sum(n for n, _ in stats.values()),
        "quarantined": sum(q for _, q in stats.values()),
        "batch_id": batch.batch_id,
        "resumed": batch.resumed,
    }


def _stamp(parsed: DataFrame, source: Source, batch: Batch, now: datetime) -> DataFrame:
    return parsed.select(
        "*",
        F.lit(now).cast("timestamp").alias("_ingested_at"),
        F.lit(batch.batch_id).alias("_batch_id"),
        F.lit(source.name).alias("_source"),
    )


def _good(parsed: DataFrame, source: Source, schema) -> DataFrame:
    return parsed.where(F.col("_reason").isNull()).select(
        *schema.fieldNames(), "_ingested_at", "_batch_id", "_source", source.lineage_column, "_rescued")


def _bad(parsed: DataFrame, source: Source) -> DataFrame:
    return parsed.where(F.col("_reason").isNotNull()).select(
        F.col("_raw").alias("raw"), F.col("_reason").alias("reason"), source.lineage_column, "_batch_id",
        "_source", "_ingested_at")


def _write_cached(lakehouse: Lakehouse, source: Source, schema, batch: Batch, parsed: DataFrame) -> dict:
    """One read, persisted: both appends and the per-file counts read the cache.

    For a JDBC window (a second query could see other rows) and for a replayed batch (its
    bronze append may have committed already, so a pass cannot be relied on to run)."""
    lineage = source.lineage_column
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    parsed = _stamp(parsed, source, batch, now).persist(StorageLevel.MEMORY_AND_DISK)
    stats = {}
    planned = {spark_path(lakehouse.spark, f): f for f in batch.to_read}
    for r in parsed.groupBy(lineage).agg(F.count(F.lit(1)).alias("n"), F.count("_reason").alias("bad")).collect():
        stats[planned.get(r[lineage], r[lineage])] = (r["n"] - r["bad"], r["bad"])
    tables = [(source.name, 0, _good(parsed, source, schema))]
    if sum(b for _, b in stats.values()) or not lakehouse.exists("bronze", quarantine_table(source.name)):
        tables.append((quarantine_table(source.name), 1, _bad(parsed, source)))
    for table, side, frame in tables:
        if not _append(lakehouse, frame, source.name, table, batch.seq):
            # Skipped: an interrupted run wrote it. Trust it only if it holds what this read gives.
            held = _batch_counts(lakehouse.spark, lakehouse.path("bronze", table), lineage, batch.batch_id, planned)
            if any(held.get(f, 0) != counts[side] for f, counts in stats.items()):
                raise RuntimeError(
                    f"bronze/{source.name}: bronze.{table} holds batch {batch.seq} with other per-file counts "
                    f"than a re-read gives; the file log keeps it planned")
    parsed.unpersist()
    return stats


def _observed(parsed: DataFrame, lineage: str, files: list[str],
              keep_broken: bool = False) -> tuple[DataFrame, Observation]:
    """``parsed`` counted as it streams by: rows, bad rows, the files holding a bad row and, for
    up to ``PER_FILE_COUNTED`` ``files``, each file's rows (``n<i>``) and bad rows (``b<i>``).
    ``keep_broken``: also the bad rows whose raw line is not a JSON object (``broken``: the line
    as ``value`` and its file as ``_cdp_file``); only when their number is known to be small.

    The observation also keeps the filter on ``_reason`` above the parse: pushed below it, the
    filter would evaluate the parse (from_json, the key scan) once more per row."""
    obs = Observation(f"bronze-{uuid.uuid4().hex}")
    bad = F.col("_reason").isNotNull()
    metrics = [F.count(F.lit(1)).alias("rows"), F.count_if(bad).alias("bad"),
               F.collect_set(F.when(bad, F.col(lineage))).alias("bad_files")]
    if keep_broken:
        line = F.struct(F.col("_raw").alias("value"), F.col(lineage).alias("_cdp_file"))
        metrics.append(F.collect_list(F.when(bad & broken_line(F.col("_raw")), line)).alias("broken"))
    if len(files) <= PER_FILE_COUNTED:
        for i, f in enumerate(files):
            hit = F.col(lineage) == F.lit(f)
            metrics += [F.count_if(hit).alias(f"n{i}"), F.count_if(hit & bad).alias(f"b{i}")]
    return parsed.observe(obs, *metrics), obs


def _per_file(metrics: dict, files: list[str]) -> dict[str, tuple[int, int]] | None:
    """``{file: (rows, bad)}`` from an observation of :func:`_observed`, None if not counted."""
    if len(files) > PER_FILE_COUNTED:
        return None
    return {f: (metrics[f"n{i}"], metrics[f"b{i}"]) for i, f in enumerate(files)}


def _write_new_files(spark: SparkSession, lakehouse: Lakehouse, source: Source, schema, batch: Batch) -> dict:
    """A new batch of files in two passes and no cache; returns ``{file: (rows, quarantined)}``.

    Pass 1 parses every file and appends the good rows to bronze, counting the bad ones as it
    goes. Pass 2, only when there were bad rows, parses again just the files that had some and
    appends those rows to quarantine. JSON lines first get one cheap pass over their text
    (:func:`scan_json_files`): the files with nothing to rescue are parsed by Spark's JSON reader
    in pass 1, and when their only bad lines are broken ones, pass 2 re-parses just those lines
    (found by hash). Per-file counts are observed on the way (or read back from the two tables
    for a batch of many files); they must add up to the rows read, in both passes and the scan.
    """
    files, lineage = batch.to_read, source.lineage_column
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    clock = [time.time()]

    def lap() -> float:
        clock.append(time.time())
        return round(clock[-1] - clock[-2], 1)

    # Spark's readers name a file by its URI (``a%20b`` for ``a b``): map back to the planned path.
    as_read = {f: spark_path(spark, f) for f in files}
    planned = {v: k for k, v in as_read.items()}
    scan = scan_json_files(spark, source, schema, files) if json_reader_allowed(source) else None
    scan_s = lap()
    fast = [f for f in files if scan is not None and as_read[f] in scan.fast]
    rest = [f for f in files if f not in fast]
    # The fast files' broken lines (the scan counted them) come back from pass 1 when few.
    fast_broken = sum(len(scan.broken.get(as_read[f], [])) for f in fast) if fast else 0
    keep = 0 < fast_broken <= HASH_FILTER_MAX and sum(
        scan.broken_bytes.get(as_read[f], 0) for f in fast) <= COLLECT_MAX_BYTES
    parts = [(fast, read_json_fast(spark, source, schema, fast), keep)] if fast else []
    parts += [(rest, read_files(spark, source, schema, rest), False)] if rest else []
    branches = [(_observed(frame, lineage, [as_read[f] for f in names], kept), names)
                for names, frame, kept in parts]
    good = None
    for (frame, _), _ in branches:
        part = _good(_stamp(frame, source, batch, now), source, schema)
        good = part if good is None else good.unionByName(part)
    _append_observed(lakehouse, good, source, batch, source.name)
    write_s = lap()
    seen = [(obs.get, names) for (_, obs), names in branches]
    rows, n_bad = sum(m["rows"] for m, _ in seen), sum(m["bad"] for m, _ in seen)
    bad_files = sorted({planned.get(f, f) for m, _ in seen for f in m["bad_files"]})
    counted = [_per_file(m, names) for m, names in seen]
    per_file = None if None in counted else {f: nb for c in counted for f, nb in c.items()}

    by_hash = by_lines = False
    if bad_files and scan is not None:
        broken = {f: scan.broken.get(as_read[f], []) for f in fast if f in bad_files}
        # The fast files' bad rows are exactly the lines the scan found broken: parse the lines
        # pass 1 kept, or re-read only those lines (by hash), instead of the whole files.
        only_broken = bool(fast) and seen[0][0]["bad"] == fast_broken == sum(map(len, broken.values()))
        by_lines = only_broken and keep and len(seen[0][0]["broken"]) == fast_broken
        # A kept list of another length: the reader and the scan disagree on a line; the whole
        # files are parsed again, and the counts below tell.
        by_hash = only_broken and not keep and fast_broken <= HASH_FILTER_MAX
        lines = seen[0][0]["broken"] if by_lines else []
        if by_lines:
            others = [f for f in bad_files if f not in broken]
            kept_lines = spark.createDataFrame([(r["value"], r["_cdp_file"]) for r in lines],
                                               "value string, _cdp_file string")
            redo = parse_json_lines(kept_lines, source, schema, F.col("value"), F.col("_cdp_file"))
            if others:
                redo = redo.unionByName(reparse_json_lines(spark, source, schema, others))
        else:
            redo = reparse_json_lines(spark, source, schema, bad_files, broken if by_hash else None)
    elif bad_files:
        redo = read_files(spark, source, schema, bad_files)
    else:
        redo = parts[0][1].where(F.lit(False))  # no bad row: only creates the table if missing
    bad_again = {}
    if bad_files or not lakehouse.exists("bronze", quarantine_table(source.name)):
        observed, obs = _observed(redo, lineage, [as_read.get(f, f) for f in bad_files])
        _append_observed(lakehouse, _bad(_stamp(observed, source, batch, now), source), source, batch,
                         quarantine_table(source.name))
        again = obs.get
        bad_again = {f: b for f, (_, b) in (_per_file(again, bad_files) or {}).items()}
        n_bad_again = again["bad"]
    else:
        n_bad_again = 0
    quarantine_s = lap()

    if per_file is not None:  # counted on the way: no read-back
        stats = {f: (n - b, b) for f, (n, b) in per_file.items()}
        mismatch = any(bad_again.get(f, 0) != b for f, (_, b) in stats.items())
    else:
        bad_n = _batch_counts(spark, lakehouse.path("bronze", quarantine_table(source.name)), lineage,
                              batch.batch_id, planned) if n_bad else {}
        good_n = _batch_counts(spark, lakehouse.path("bronze", source.name), lineage, batch.batch_id, planned)
        stats = {f: (good_n.get(f, 0), bad_n.get(f, 0)) for f in set(good_n) | set(bad_n)}
        mismatch = False
    if scan is not None:  # the scan counted each file's lines, and the broken ones are all bad
        mismatch = mismatch or any(scan.lines.get(as_read[f], 0) != sum(stats.get(f, (0, 0))) for f in files)
        mismatch = mismatch or bool(fast) and seen[0][0]["bad"] < fast_broken
    log.info("bronze/%s: %s%d files: scan %.1fs, bronze %.1fs, quarantine %.1fs (%d files with bad rows%s), "
             "counts %.1fs",
             source.name, f"{len(fast)} by the JSON reader of " if scan is not None else "", len(files), scan_s,
             write_s, quarantine_s, len(bad_files), ", broken lines kept from pass 1" if by_lines
             else ", broken lines by hash" if by_hash else "", lap())
    good_total, bad_total = sum(g for g, _ in stats.values()), sum(b for _, b in stats.values())
    if mismatch or good_total + bad_total != rows or n_bad_again != n_bad or bad_total != n_bad:
        raise RuntimeError(
            f"bronze/{source.name}: batch {batch.seq} does not add up (read {rows} rows, {n_bad} bad; "
            f"bronze {good_total}, quarantine {bad_total}); the file log keeps it planned")
    return stats


def _append_observed(lakehouse: Lakehouse, df: DataFrame, source: Source, batch: Batch, table: str) -> None:
    """:func:`_append` of a frame whose observation is read next: the append must have run.

    Delta skips an append whose txn version it has seen (no commit, no query, so the observation
    would never arrive). For a newly planned batch that only happens when the file log lost
    batches the table holds: an error, not a wait."""
    if not _append(lakehouse, df, source.name, table, batch.seq):
        raise RuntimeError(
            f"bronze/{source.name}: bronze.{table} already holds batch {batch.seq}, which the file log "
            f"does not have as committed (was ops.{FILE_LOG_TABLE} replaced?); nothing was written")


def _batch_counts(spark: SparkSession, path: str, lineage: str, batch_id: str,
                  planned: dict[str, str]) -> dict[str, int]:
    """Rows of one batch per file, read back from a bronze or quarantine table (two columns)."""
    rows = (spark.read.format("delta").load(path).where(F.col("_batch_id") == batch_id)
            .groupBy(lineage).count().collect())
    return {planned.get(r[lineage], r[lineage]): r["count"] for r in rows}


def _append(lakehouse: Lakehouse, df: DataFrame, source: str, table: str, seq: int) -> bool:
    """One idempotent append of ``source``'s batch ``seq`` to ``bronze.<table>``; whether it committed."""
    return lakehouse.append_once(df, "bronze", table, f"bronze:{source}", seq)
