"""The resolve stage: inputs -> graph -> guarded clusters -> stable ids -> tables.

Writes, only after every guard passed, in this order: the run's lineage rows to
``ops.identity_lineage_pending``; ``gold.identity_map`` (its commit tagged ``identity:<run id>``,
merged, so only changed rows are rewritten); the pending rows into ``gold.identity_lineage``
(insert-if-absent), then the pending table emptied; last (two at a time on a small graph) the
graph an incremental run grows: ``gold.identity_records`` (each input record's key identifier: its
customer is that identifier's map row), ``silver.identity_edges`` (every candidate edge with its
status), ``silver.identity_vertices`` (with the junk flag) and ``silver.identity_vertex_parts``
(each input's share of each vertex).

Two tables cannot commit together, so the merges a run records are parked first: a run that
dies before its map commit leaves only parked rows, which the next run discards (the merges did
not happen; that run records them itself); one that dies after it leaves parked rows of a
published map, which the next run moves into the lineage. So the lineage holds each merge and
split exactly once, under the run whose map made it, however a run is interrupted.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
import logging
import pkgutil
import time
from datetime import datetime, timezone

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from cdp_lib import __version__
from cdp_lib.identity.builder import (
    RECORD_COLUMNS,
    IdentityGraph,
    PreviousGraph,
    build_graph,
    build_graph_incremental,
)
from cdp_lib.identity.clustering import ClusterResult, cluster_graph, update_clusters
from cdp_lib.identity.config import IdentityConfig
from cdp_lib.identity.graph import merge_vertices, vertex_id
from cdp_lib.identity.guards import check_giant_components
from cdp_lib.identity.stable_ids import LINEAGE_SCHEMA, assign_customer_ids
from cdp_lib.lakehouse import split_table_name
from cdp_lib.lanes import each_in_lanes
from cdp_lib.runlog import new_run_id, stage_run

__all__ = ["IdentityGraph", "build_graph", "resolve_frames", "run_resolve", "record_customers"]

log = logging.getLogger(__name__)


def resolve_frames(
    graph: IdentityGraph,
    cfg: IdentityConfig,
    previous_map: DataFrame | None,
    run_id: str,
    now: datetime,
    previous_edges: DataFrame | None = None,
    previous_junk: DataFrame | None = None,
) -> tuple[ClusterResult, DataFrame, DataFrame, DataFrame, dict]:
    """Cluster, check, assign ids. Incremental when the graph was grown from the last run's
    (``graph.touched`` set) and ``previous_edges`` (with status) and ``previous_junk`` (the last
    run's ``silver.identity_edges`` and its junk vertices) are given.

    Returns (cluster result, identity map, lineage, records, figures): ``records`` is every input
    record with a key identifier (:data:`RECORD_COLUMNS`, the rows of ``gold.identity_records``;
    :func:`record_customers` gives their customers). Raises GiantComponentError before anything
    is returned, so nothing is published.
    """
    started = time.monotonic()
    if graph.parts is not None:  # materialised once: the vertices and the published parts both read them
        graph.parts = graph.parts.localCheckpoint(eager=True, storageLevel=StorageLevel.DISK_ONLY)
        graph.vertices = merge_vertices(graph.parts)
    vertices = graph.vertices.localCheckpoint(eager=True, storageLevel=StorageLevel.DISK_ONLY)
    edges = graph.edges.localCheckpoint(eager=True, storageLevel=StorageLevel.DISK_ONLY)
    graph.vertices, graph.edges = vertices, edges  # materialised: publishing reads them again
    if graph.touched is not None:
        graph.touched = graph.touched.localCheckpoint(eager=True)  # small; every later step reads it
    log.info("resolve: identifier graph built in %.0fs", time.monotonic() - started)
    incremental = graph.touched is not None and previous_edges is not None and previous_junk is not None
    if incremental and previous_map is not None:
        prev_assign = previous_map.select(
            "id_type", "id_value", vertex_id("id_type", "id_value").alias("vid"), "customer_id"
        )
        prev_assign = prev_assign.join(
            prev_assign.groupBy("customer_id").agg(F.min("vid").alias("component")), "customer_id"
        ).drop("customer_id")
        result = update_clusters(prev_assign, previous_edges, vertices, edges, cfg, graph.touched, previous_junk)
    else:
        result = cluster_graph(vertices, edges, cfg)
    assign = result.assign.localCheckpoint(eager=True, storageLevel=StorageLevel.DISK_ONLY)
    log.info("resolve: clustered in %.0fs", time.monotonic() - started)
    kept = result.edges.where("status = 'kept'")
    figures = check_giant_components(assign, kept, cfg.giant_component)
    keys = ["id_type", "id_value"]
    if result.affected is not None and previous_map is not None:
        # Only the re-clustered identifiers can change customer, first or last seen: every previous
        # customer with one of them among its members has all of them there (whole components).
        affected = result.affected
        sub_map, lineage = assign_customer_ids(
            assign.join(affected, keys, "left_semi"), previous_map.join(affected, keys, "left_semi"), run_id, now)
        identity_map = previous_map.join(affected, keys, "left_anti").select(*sub_map.columns).unionByName(sub_map)
        result.map_scope = lambda df: df.join(affected, keys, "left_semi")
    else:
        identity_map, lineage = assign_customer_ids(assign, previous_map, run_id, now)
    identity_map = identity_map.persist()
    records = graph.records.where(F.col("key_value").isNotNull()).select(*RECORD_COLUMNS)
    figures.update(graph.figures)
    figures["repaired_clusters"] = result.repaired_components
    return result, identity_map, lineage, records, figures


def _read_tables(lakehouse, cfg: IdentityConfig, versions: dict[str, int | None] | None = None) -> dict[str, DataFrame]:
    return {inp.name: lakehouse.read(*split_table_name(inp.table), (versions or {}).get(inp.table))
            for inp in cfg.inputs}


PENDING = ("ops", "identity_lineage_pending")
# Identifiers from which the graph's tables are written one after the other (see run_resolve).
LARGE_GRAPH = 100_000
# What a resolution writes and reads back next time: when these and the inputs are as the last
# successful run left them, the same code and config would produce exactly the same tables.
OUTPUTS = (("gold", "identity_map"), ("gold", "identity_records"), ("silver", "identity_edges"),
           ("silver", "identity_vertices"), ("silver", "identity_vertex_parts"))


def _code_fingerprint() -> str:
    """The package version and the source of every identity module (the version alone does not
    change between commits: new resolution code must not be skipped as "nothing to do")."""
    import cdp_lib.identity as package

    digest = hashlib.sha256(__version__.encode())
    for module in sorted(m.name for m in pkgutil.iter_modules(package.__path__)):
        digest.update(inspect.getsource(importlib.import_module(f"cdp_lib.identity.{module}")).encode())
    return digest.hexdigest()


def _fingerprint(lakehouse, cfg: IdentityConfig, inputs: dict[str, int | None]) -> dict:
    return {
        "code": _code_fingerprint(),
        "config": hashlib.sha256(cfg.model_dump_json().encode()).hexdigest(),
        "inputs": inputs,
        "outputs": {f"{layer}.{table}": lakehouse.version(layer, table) for layer, table in OUTPUTS},
    }


def _last_fingerprint(lakehouse) -> dict | None:
    if not lakehouse.exists("ops", "run_log"):
        return None
    last = (
        lakehouse.read("ops", "run_log")
        .where((F.col("stage") == "identity") & (F.col("source") == "identity_map") & (F.col("status") == "success"))
        .orderBy(F.desc("ended_at")).select("details").first()
    )
    return json.loads(last.details).get("fingerprint") if last and last.details else None


def _map_tag(run_id: str) -> str:
    return f"identity:{run_id}"


def _settle_pending(lakehouse) -> None:
    """Move an interrupted run's parked lineage into gold if its map was published, else drop it."""
    if not lakehouse.exists(*PENDING):
        return
    pending = lakehouse.read(*PENDING)
    runs = [r.run_id for r in pending.select("run_id").distinct().collect()]  # usually none: one small job
    if not runs:
        return
    published = [r for r in runs if lakehouse.tagged("gold", "identity_map", _map_tag(r))]
    if published:
        _append_once(lakehouse, pending.where(F.col("run_id").isin(published)))
    for r in set(runs) - set(published):
        log.warning("resolve: run %s stopped before publishing its map; its parked lineage is dropped", r)
    lakehouse.delta(*PENDING).delete()


def _append_once(lakehouse, lineage: DataFrame) -> None:
    if not lakehouse.exists("gold", "identity_lineage"):
        lineage.write.format("delta").mode("append").save(lakehouse.path("gold", "identity_lineage"))
        return
    keys = ("run_id", "event", "from_customer_id", "to_customer_id")
    (
        lakehouse.delta("gold", "identity_lineage").alias("t")
        .merge(lineage.alias("s"), " and ".join(f"t.{k} <=> s.{k}" for k in keys))
        .whenNotMatchedInsertAll()
        .execute()
    )


def _previous_graph(lakehouse, last: dict | None, now: dict) -> PreviousGraph | None:
    """The last run's graph when an incremental run may grow it: that run succeeded with this code
    and config, and nothing has written its outputs since (a restore, a failed later run)."""
    if not last or "inputs" not in last or any(last.get(k) != now[k] for k in ("code", "config", "outputs")):
        return None
    outputs = now["outputs"]
    if any(v is None for v in outputs.values()):
        return None

    def read(layer: str, table: str) -> DataFrame:
        return lakehouse.read(layer, table, outputs[f"{layer}.{table}"])

    return PreviousGraph(
        versions=last["inputs"], edges=read("silver", "identity_edges"),
        parts=read("silver", "identity_vertex_parts"), records=read("gold", "identity_records"),
    )


def run_resolve(
    spark: SparkSession, lakehouse, cfg: IdentityConfig, *, incremental: bool = False, run_id: str | None = None,
    force: bool = False,
) -> dict:
    """The ``resolve`` stage: read inputs, resolve, publish; returns a summary (counts only).

    Skipped (run-log status ``skipped``, nothing written) when the inputs, the published tables,
    the config and the code are exactly as after the last successful run, unless ``force``.
    ``incremental``: grow the last run's graph by what the inputs changed since and re-cluster the
    components it touched (:mod:`cdp_lib.identity.builder`); a full resolution when there is no
    usable last run.
    """
    run_id = run_id or new_run_id()
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    with stage_run(spark, lakehouse.path("ops", "run_log"), run_id, "identity", "identity_map") as run:
        _settle_pending(lakehouse)
        # Pinned before the inputs are read, and read at these versions: a commit landing during
        # the run is the next run's.
        inputs = {inp.table: lakehouse.version(*split_table_name(inp.table)) for inp in cfg.inputs}
        last = _last_fingerprint(lakehouse)
        current = _fingerprint(lakehouse, cfg, inputs)
        if not force and last is not None and last == current:
            run.status, run.details = "skipped", {"fingerprint": last}
            log.info("resolve %s: inputs and outputs unchanged since the last run; nothing to do", run_id)
            return {"run_id": run_id, "skipped": True}
        previous = _previous_graph(lakehouse, last, current) if incremental else None
        if previous is not None:
            graph = build_graph_incremental(lakehouse, cfg, previous, inputs)
        else:
            graph = build_graph(_read_tables(lakehouse, cfg, inputs), cfg)
        previous_map = lakehouse.read("gold", "identity_map") if lakehouse.exists("gold", "identity_map") else None
        previous_edges = previous_junk = None
        if previous is not None:
            previous_edges = previous.edges
            previous_junk = lakehouse.read("silver", "identity_vertices",
                                           current["outputs"]["silver.identity_vertices"]).where("junk")
        if previous_map is not None:
            previous_map = previous_map.localCheckpoint()  # we overwrite the table we read from
        result, identity_map, lineage, records, figures = resolve_frames(
            graph, cfg, previous_map, run_id, now, previous_edges, previous_junk
        )
        edges_out = result.edges.localCheckpoint()
        identity_map = identity_map.localCheckpoint()
        # One pass over the lineage plan (a take(1) then a second pass cost more, as often as not
        # for no row); the NOT NULL schema is applied to the few rows there are.
        lineage = lineage.localCheckpoint()
        n_lineage = lineage.count()
        lineage = spark.createDataFrame(lineage.rdd, LINEAGE_SCHEMA).localCheckpoint() if n_lineage else None
        if lineage is not None:  # parked before the map: see the module docstring
            lineage.write.format("delta").mode("overwrite").save(lakehouse.path(*PENDING))
        # Merged, not overwritten: its change feed then names only the customers that changed,
        # which is what keeps gold's incremental run incremental.
        # An incremental run compares and merges only the rows it can have changed.
        map_scope = result.map_scope
        with lakehouse.commit_tag(_map_tag(run_id)):
            lakehouse.sync(map_scope(identity_map) if map_scope else identity_map, "gold", "identity_map",
                           ["id_type", "id_value"], scope=map_scope)
        if lineage is not None:
            _append_once(lakehouse, lineage)
            lakehouse.delta(*PENDING).delete()
        # The graph last: an incremental run grows it, so a run killed after the map but before
        # these (its fingerprint never recorded) makes the next run a full one.
        junk = result.junk.select("id_type", "id_value", F.lit(True).alias("junk"))
        vertices_out = graph.vertices.join(F.broadcast(junk), ["id_type", "id_value"], "left").fillna(False, ["junk"])
        parts_out = graph.parts  # checkpointed: not read from the table it replaces
        # Four independent tables. On a small graph two are written at once: each write is mostly
        # the driver's (planning, the Delta commit), time the other's tasks use. On a large one
        # they go one after the other (all "heavy"): two large writes at once only contend, as
        # bronze's large sources did, and the overlap was measured on a small graph only.
        graph_tables = {"identity_edges": edges_out, "identity_vertex_parts": parts_out,
                        "identity_vertices": vertices_out}

        def publish(table: str) -> None:
            if table == "identity_records":
                _publish_records(lakehouse, records, graph)
            else:
                graph_tables[table].write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(
                    lakehouse.path("silver", table))

        tables = [*graph_tables, "identity_records"]
        large = frozenset(tables) if figures["identifiers"] >= LARGE_GRAPH else frozenset()
        each_in_lanes(tables, publish, 2, name=str, heavy=large, spark=spark, label="identity")
        for layer, table in OUTPUTS:
            lakehouse.register(layer, table)
        if lakehouse.exists("gold", "identity_lineage"):
            lakehouse.register("gold", "identity_lineage")
        status = {r.status: r.n for r in edges_out.groupBy("status").agg(F.count(F.lit(1)).alias("n")).collect()}
        run.rows_in = sum(status.values())
        run.rows_out = figures["identifiers"]
        figures.update({"edges": status, "lineage_rows": n_lineage, "junk_identifiers": result.junk.count(),
                        "customers": figures["clusters"], "incremental": previous is not None})
        run.details = {**figures, "fingerprint": _fingerprint(lakehouse, cfg, inputs)}
        graph.release()
    log.info("resolve %s: %d identifiers in %d customers", run_id, figures["identifiers"], figures["clusters"])
    return {"run_id": run_id, "skipped": False, **figures}


def _publish_records(lakehouse, records: DataFrame, graph: IdentityGraph) -> None:
    """gold.identity_records: written whole by a full run; an incremental one inserts the records
    its inputs added, deletes those a rebuilt input no longer has and replaces the changed records
    of an input updated in place (one commit)."""
    exists = lakehouse.exists("gold", "identity_records")
    if graph.changed_records is None or not exists or lakehouse.read(
            "gold", "identity_records").columns != RECORD_COLUMNS:
        records.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(
            lakehouse.path("gold", "identity_records"))
        return
    modes = graph.figures.get("inputs", {})
    if all(kind == "same" for kind in modes.values()):
        return
    rebuilt = sorted(name for name, kind in modes.items() if kind == "rebuild")
    changed = graph.changed_records.where(F.col("key_value").isNotNull()).select(*RECORD_COLUMNS)
    target = lakehouse.delta("gold", "identity_records").alias("t")
    on = " and ".join(f"t.{k} <=> s.{k}" for k in RECORD_COLUMNS)
    updated = sorted(name for name, kind in modes.items() if kind == "update")
    if not updated:  # (graph.retracted_records is set exactly when an input was updated in place)
        merge = target.merge(changed.alias("s"), on).whenNotMatchedInsertAll()  # insert-only: one pass
    else:
        # A changed row's record as stored and as it is now: the one is deleted, the other inserted;
        # a record that is both (the row's key identifier did not change) stays as it is. Record keys
        # of the changed rows are unique (else the input was rebuilt), and the other inputs' records
        # are made distinct: at most one source row per target row, as Delta requires.
        in_updated = F.col("source").isin(updated)
        now, gone = changed.where(in_updated), graph.retracted_records.select(*RECORD_COLUMNS)
        ops = (changed.where(~in_updated).distinct().unionByName(now.exceptAll(gone))
               .withColumn("_op", F.lit("insert"))
               .unionByName(gone.exceptAll(now).withColumn("_op", F.lit("delete"))))
        merge = (target.merge(ops.alias("s"), on).whenMatchedDelete(condition="s._op = 'delete'")
                 .whenNotMatchedInsert(condition="s._op = 'insert'", values={k: f"s.{k}" for k in RECORD_COLUMNS}))
    if rebuilt:
        merge = merge.whenNotMatchedBySourceDelete(condition=F.col("t.source").isin(rebuilt))
    merge.execute()


def record_customers(records: DataFrame, identity_map: DataFrame) -> DataFrame:
    """Each record's customer (:data:`RECORD_COLUMNS` + ``customer_id``): ``gold.identity_records``
    joined to ``gold.identity_map`` by its key identifier. Customer ids live in the map only, so a
    merge or split rewrites map rows, never the records behind them."""
    return records.join(
        identity_map.select(F.col("id_type").alias("key_type"), F.col("id_value").alias("key_value"), "customer_id"),
        ["key_type", "key_value"],
    ).select(*RECORD_COLUMNS, "customer_id")
