"""Build silver entities from bronze: read new rows, normalise, check, de-duplicate, MERGE.

Per entity and run: one commit to ``silver.<table>`` and at most one to its quarantine table;
per run, one to ``ops.dq_results`` (every entity's rule counts, the failed entity's too), one to
``ops.silver_watermarks`` and one run-log commit (every entity's row).

Entities are independent (each reads its own bronze tables and writes its own silver tables), so
a run builds ``parallel`` of them at once in lanes of one SparkSession, the largest first
(:func:`cdp_lib.lanes.each_in_lanes`): a small entity's time is mostly the driver's (planning,
Delta commits), during which another entity's tasks use the cores.
"""

from __future__ import annotations

import logging
import threading
from functools import reduce

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from cdp_lib.errors import ConfigError
from cdp_lib.lakehouse import Lakehouse, split_table_name
from cdp_lib.lanes import HEAVY_BYTES, each_in_lanes
from cdp_lib.runlog import held_source_rows, new_run_id, stage_run
from cdp_lib.session import register_functions
from cdp_lib.silver.dedupe import merge_first, merge_latest, pick_one, with_row_hash
from cdp_lib.silver.expectations import (
    DQ_RESULTS_SCHEMA,
    dq_counts,
    dq_result_rows,
    raise_on_fail,
    with_quarantine_reasons,
    with_rule_checks,
)
from cdp_lib.silver.incremental import Watermarks, read_bronze_since
from cdp_lib.silver.spec import EntitySpec, SilverConfig
from cdp_lib.silver.standardize import standardize

__all__ = ["SilverRunBook", "build_silver", "build_entity", "dedupe_batch"]

log = logging.getLogger(__name__)


def dedupe_batch(df: DataFrame, entity: EntitySpec) -> DataFrame:
    """One row per business key (latest or first), the earliest ingested of its exact copies."""
    return pick_one(df, entity.key, entity.keep, entity.order_by)


def _refs(lakehouse: Lakehouse, entity: EntitySpec) -> dict[str, DataFrame | None]:
    refs: dict[str, DataFrame | None] = {}
    for rule in entity.expectations:
        if rule.type == "referential" and rule.ref_table not in refs:
            layer, table = split_table_name(rule.ref_table)
            refs[rule.ref_table] = lakehouse.read(layer, table) if lakehouse.exists(layer, table) else None
    return refs


class SilverRunBook:
    """What one silver run records once for all its entities: the watermarks (:class:`Watermarks`)
    and the ``ops.dq_results`` rows, saved in one commit each by :meth:`save`, which the run calls
    even when an entity fails (its rule counts are what explains the failure). Entities built at
    once stage their figures through :meth:`add_dq_rows` and :meth:`advance`."""

    def __init__(self, lakehouse: Lakehouse):
        self.lakehouse = lakehouse
        self.watermarks = Watermarks(lakehouse)
        self.dq_rows: list[tuple] = []
        self._lock = threading.Lock()

    def consumed(self, entity: str) -> dict[str, int]:
        with self._lock:
            return self.watermarks.get(entity)

    def advance(self, entity: str, versions: dict[str, int]) -> None:
        with self._lock:
            self.watermarks.advance(entity, versions)

    def add_dq_rows(self, rows: list[tuple]) -> None:
        with self._lock:
            self.dq_rows.extend(rows)

    def save(self, run_id: str) -> None:
        if self.dq_rows:
            self.lakehouse.spark.createDataFrame(self.dq_rows, DQ_RESULTS_SCHEMA).write.format("delta").mode(
                "append").save(self.lakehouse.path("ops", "dq_results"))
            self.dq_rows = []
        self.watermarks.save(run_id)


def _write(lakehouse: Lakehouse, table: str, rows: DataFrame, entity: EntitySpec, full_rebuild: bool) -> int:
    """Write ``rows`` to ``silver.<table>``; returns the rows inserted or updated (Delta's metrics of
    the write: a MERGE that changes nothing, rows re-read after a crash, counts 0)."""
    path = lakehouse.path("silver", table)
    if full_rebuild or not lakehouse.exists("silver", table):
        rows.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(path)
        metrics = lakehouse.delta("silver", table).history(1).select("operationMetrics").first()[0] or {}
        written = int(metrics.get("numOutputRows", 0))
    elif entity.keep == "latest":
        written = merge_latest(lakehouse.delta("silver", table), rows, entity.key, entity.order_by)
    else:
        written = merge_first(lakehouse.delta("silver", table), rows, entity.key)
    lakehouse.register("silver", table)
    return written


def _write_quarantine(lakehouse: Lakehouse, table: str, rows: DataFrame, full_rebuild: bool) -> None:
    path = lakehouse.path("silver", table)
    if full_rebuild or not lakehouse.exists("silver", table):
        rows.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(path)
    else:
        # Insert-if-absent: re-reading the same bronze rows after a crash adds nothing.
        cond = "t._source = s._source AND t._record_key = s._record_key AND t._row_hash = s._row_hash"
        (
            lakehouse.delta("silver", table).alias("t").merge(rows.alias("s"), cond)
            .withSchemaEvolution().whenNotMatchedInsertAll().execute()
        )
    lakehouse.register("silver", table)


def build_entity(
    spark: SparkSession, lakehouse: Lakehouse, cfg: SilverConfig, name: str, run_id: str,
    full_rebuild: bool = False, book: SilverRunBook | None = None,
) -> dict:
    """Build ``silver.<entity>`` from the bronze rows it has not seen (all of them on a full rebuild).

    With ``book`` (one silver run building several entities) the entity's consumed bronze versions
    and rule counts are staged there and saved by the caller; alone, it saves them itself.
    """
    if book is None:  # alone: checked and prepared here; build_silver does it once for all its entities
        _check_known(cfg, [name])
        register_functions(spark)  # the normalisers' Java functions, in a session not from build_session
        book = SilverRunBook(lakehouse)
        try:
            return build_entity(spark, lakehouse, cfg, name, run_id, full_rebuild, book)
        finally:
            book.save(run_id)
    entity = cfg.entities[name]
    with stage_run(spark, lakehouse.path("ops", "run_log"), run_id, "silver", name) as run:
        consumed = {} if full_rebuild else book.consumed(name)
        frames, versions, missing = [], {}, []
        for i, source in enumerate(entity.sources):
            if not lakehouse.exists("bronze", source.bronze):
                missing.append(source.bronze)
                continue
            until = lakehouse.version("bronze", source.bronze)
            since = consumed.get(source.bronze)
            versions[source.bronze] = until
            if since is not None and since >= until:
                continue
            raw = read_bronze_since(lakehouse, source.bronze, since, until)
            frames.append(standardize(raw, name, entity, i, email_provider_rules=cfg.email_provider_rules))
        run.details = {"bronze_versions": versions, "missing_bronze": missing, "full_rebuild": full_rebuild}
        if missing:
            log.warning("silver %s: bronze table(s) %s missing; skipped", name, missing)
        if not frames:
            run.status = "skipped"
            run.rows_in, run.rows_out, run.rows_quarantined = 0, 0, 0
            book.advance(name, {t: v for t, v in versions.items() if t not in consumed})
            return {"entity": name, "status": "skipped", "rows_in": 0, "rows_out": 0, "rows_quarantined": 0}

        batch = reduce(DataFrame.unionByName, frames)
        checked = batch.transform(with_rule_checks, entity, _refs(lakehouse, entity))
        # On disk, not in storage memory: at 1M people one batch is 9.5M events, and cached in memory
        # it left the dedupe's sorts too little heap (OutOfMemoryError on a 4 GB driver).
        checked = checked.persist(StorageLevel.DISK_ONLY)
        try:
            counts = dq_counts(checked, entity)
            book.add_dq_rows(dq_result_rows(run_id, name, entity, counts))
            raise_on_fail(name, entity, counts)

            data_cols = list(entity.columns)
            marked = (
                checked.transform(with_quarantine_reasons, entity)
                .transform(with_row_hash, data_cols)
                .withColumn("_run_id", F.lit(run_id))
            )
            good = marked.where(F.size("_dq_reasons") == 0).drop("_dq_reasons")
            bad = marked.where(F.size("_dq_reasons") > 0)
            rows = dedupe_batch(good, entity)
            written = _write(lakehouse, entity.table, rows, entity, full_rebuild)
            quarantined = counts["__quarantined"]
            if quarantined or full_rebuild:
                _write_quarantine(lakehouse, f"{entity.table}_quarantine", bad, full_rebuild)
            book.advance(name, versions)
            run.rows_in = counts["__total"]
            run.rows_out = written
            run.rows_quarantined = quarantined
        finally:
            checked.unpersist()
    return {"entity": name, "status": run.status, "rows_in": run.rows_in, "rows_out": run.rows_out,
            "rows_quarantined": run.rows_quarantined}


def build_silver(
    spark: SparkSession, lakehouse: Lakehouse, cfg: SilverConfig, entities: list[str] | None = None,
    full_rebuild: bool = False, run_id: str | None = None, parallel: int | None = None,
) -> dict:
    """Build every entity of ``cfg`` (or the named ones), each with its own run-log row, ``parallel``
    (default: the config's) at once, the largest first. After a failure no further entity starts;
    those running finish, and what they consumed stays consumed."""
    run_id = run_id or new_run_id()
    names = list(dict.fromkeys(entities or cfg.entities))
    _check_known(cfg, names)  # before any entity is built
    register_functions(spark)
    size = {n: _bronze_bytes(lakehouse, cfg.entities[n]) for n in names}
    order = sorted(names, key=lambda n: -size[n])
    book = SilverRunBook(lakehouse)
    # Heavy: an entity that reads all of a large bronze (a first build, a full rebuild). One with a
    # watermark reads only what arrived since, whatever its bronze's size.
    heavy = frozenset(n for n in names if size[n] >= HEAVY_BYTES and (full_rebuild or not book.consumed(n)))
    try:
        # The entities' run-log rows in one commit (inside a pipeline stage, with the stage's row).
        with held_source_rows(spark, lakehouse.path("ops", "run_log")):
            done = each_in_lanes(
                order, lambda n: build_entity(spark, lakehouse, cfg, n, run_id, full_rebuild, book),
                parallel or cfg.parallel, name=str, heavy=heavy, spark=spark, label="silver")
    finally:
        book.save(run_id)  # what succeeded before a failure stays consumed; a failure's rule counts are kept
    return {"run_id": run_id, "entities": [done[n] for n in names]}


def _check_known(cfg: SilverConfig, names: list[str]) -> None:
    for name in names:
        if name not in cfg.entities:
            raise ConfigError("conf/silver.yaml", "entities", f"unknown entity {name!r}; known: {sorted(cfg.entities)}")


def _bronze_bytes(lakehouse: Lakehouse, entity: EntitySpec) -> int:
    """The stored size of the entity's bronze tables (to order entities by, largest first)."""
    return sum(lakehouse.stored_bytes("bronze", source.bronze) for source in entity.sources)
