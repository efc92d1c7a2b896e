"""The resolve stage: inputs -> graph -> guarded clusters -> stable ids -> tables.

Writes, only after every guard passed, in this order: the run's lineage rows to
``ops.identity_lineage_pending``; ``gold.identity_map`` (its commit tagged ``identity:<run id>``)
and ``gold.identity_records`` ((source, record_key) -> customer_id; both merged, so only changed
rows are rewritten); the pending rows into ``gold.identity_lineage`` (insert-if-absent), then the
pending table emptied; last ``silver.identity_edges`` (every candidate edge with its status) and
``silver.identity_vertices`` (the graph an incremental run compares itself with).

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
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import reduce

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from cdp_lib import __version__
from cdp_lib.identity.clustering import ClusterResult, cluster_graph, update_clusters
from cdp_lib.identity.config import IdentityConfig, validate_columns
from cdp_lib.identity.graph import dedupe_edges, deterministic_edges, input_vertices, merge_vertices, vertex_id
from cdp_lib.identity.guards import check_giant_components
from cdp_lib.identity.probabilistic import probabilistic_edges
from cdp_lib.identity.records import to_records
from cdp_lib.identity.stable_ids import LINEAGE_SCHEMA, assign_customer_ids
from cdp_lib.lakehouse import split_table_name
from cdp_lib.runlog import new_run_id, stage_run

__all__ = ["IdentityGraph", "build_graph", "resolve_frames", "run_resolve"]

log = logging.getLogger(__name__)


@dataclass
class IdentityGraph:
    records: DataFrame  # source, record_key, key_type, key_value (one row per input record)
    vertices: DataFrame
    edges: DataFrame
    figures: dict
    cached: list = field(default_factory=list)  # persisted inputs, released by :meth:`release`

    def release(self) -> None:
        for df in self.cached:
            df.unpersist()


def build_graph(tables: dict[str, DataFrame], cfg: IdentityConfig, probabilistic: bool = True) -> IdentityGraph:
    """Vertices and deduplicated edges from input frames keyed by input name."""
    recs, raw_edges, raw_vertices, prob_recs, cached = [], [], [], [], []
    for inp in cfg.inputs:
        df = tables[inp.name]
        validate_columns(inp, df.columns)
        # Edges, vertices, the record map and the probabilistic tier all read the records: on disk
        # once instead of re-reading and re-normalising the input four times.
        r = df.transform(to_records, inp, cfg.blocklist).persist(StorageLevel.DISK_ONLY)
        cached.append(r)
        recs.append(r.select("source", "record_key", "key_type", "key_value"))
        raw_edges.append(deterministic_edges(r, inp))
        raw_vertices.append(input_vertices(r, inp, cfg))
        if inp.probabilistic:
            prob_recs.append(r)
    figures: dict = {}
    if probabilistic and cfg.probabilistic and cfg.probabilistic.enabled and prob_recs:
        id_cols = sorted({c for r in prob_recs for c in r.columns if c.startswith("id__")})
        cols = sorted({c for r in prob_recs for c in r.columns})
        aligned = [r.select(*[F.col(c) if c in r.columns else F.lit(None).cast("string").alias(c) for c in cols])
                   for r in prob_recs]
        pe, figures = probabilistic_edges(reduce(DataFrame.unionByName, aligned), cfg.probabilistic, id_cols)
        if pe is not None:
            raw_edges.append(pe)
    edges = dedupe_edges(reduce(DataFrame.unionByName, raw_edges))
    vertices = merge_vertices(reduce(DataFrame.unionByName, raw_vertices))
    return IdentityGraph(reduce(DataFrame.unionByName, recs), vertices, edges, figures, cached)


def resolve_frames(
    graph: IdentityGraph,
    cfg: IdentityConfig,
    previous_map: DataFrame | None,
    run_id: str,
    now: datetime,
    previous_edges: DataFrame | None = None,
    previous_vertices: DataFrame | None = None,
) -> tuple[ClusterResult, DataFrame, DataFrame, DataFrame, dict]:
    """Cluster, check, assign ids. Incremental when ``previous_edges`` (with status) and
    ``previous_vertices`` (the last run's ``silver.identity_edges`` and ``identity_vertices``) are given.

    Returns (cluster result, identity map, lineage, record map, figures). Raises
    GiantComponentError before anything is returned, so nothing is published.
    """
    started = time.monotonic()
    vertices = graph.vertices.localCheckpoint(eager=True, storageLevel=StorageLevel.DISK_ONLY)
    edges = graph.edges.localCheckpoint(eager=True, storageLevel=StorageLevel.DISK_ONLY)
    graph.vertices, graph.edges = vertices, edges  # materialised: publishing reads them again
    log.info("resolve: identifier graph built in %.0fs", time.monotonic() - started)
    if previous_edges is not None and previous_vertices is not None and previous_map is not None:
        prev_assign = previous_map.select(
            "id_type", "id_value", vertex_id("id_type", "id_value").alias("vid"), "customer_id"
        )
        prev_assign = prev_assign.join(
            prev_assign.groupBy("customer_id").agg(F.min("vid").alias("component")), "customer_id"
        ).drop("customer_id")
        result = update_clusters(prev_assign, previous_edges, vertices, edges, cfg, previous_vertices)
    else:
        result = cluster_graph(vertices, edges, cfg)
    assign = result.assign.localCheckpoint(eager=True, storageLevel=StorageLevel.DISK_ONLY)
    log.info("resolve: clustered in %.0fs", time.monotonic() - started)
    kept = result.edges.where("status = 'kept'")
    figures = check_giant_components(assign, kept, cfg.giant_component)
    identity_map, lineage = assign_customer_ids(assign, vertices, previous_map, run_id, now)
    identity_map = identity_map.persist()
    record_map = (
        graph.records.where(F.col("key_value").isNotNull())
        .join(identity_map.select(F.col("id_type").alias("key_type"), F.col("id_value").alias("key_value"),
                                  "customer_id"), ["key_type", "key_value"])
        .select("source", "record_key", "customer_id")
        .distinct()
    )
    figures.update(graph.figures)
    figures["repaired_clusters"] = result.repaired_components
    return result, identity_map, lineage, record_map, figures


def _read_tables(lakehouse, cfg: IdentityConfig) -> dict[str, DataFrame]:
    out = {}
    for inp in cfg.inputs:
        out[inp.name] = lakehouse.read(*split_table_name(inp.table))
    return out


PENDING = ("ops", "identity_lineage_pending")
# What a resolution writes and reads back next time: when these and the inputs are as the last
# successful run left them, the same code and config would produce exactly the same tables.
OUTPUTS = (("gold", "identity_map"), ("gold", "identity_records"), ("silver", "identity_edges"),
           ("silver", "identity_vertices"))


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
    pending = lakehouse.read(*PENDING).localCheckpoint()
    runs = [r.run_id for r in pending.select("run_id").distinct().collect()]
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


def run_resolve(
    spark: SparkSession, lakehouse, cfg: IdentityConfig, *, incremental: bool = False, run_id: str | None = None,
    force: bool = False,
) -> dict:
    """The ``resolve`` stage: read inputs, resolve, publish; returns a summary (counts only).

    Skipped (run-log status ``skipped``, nothing written) when the inputs, the published tables,
    the config and the code are exactly as after the last successful run, unless ``force``.
    """
    run_id = run_id or new_run_id()
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    with stage_run(spark, lakehouse.path("ops", "run_log"), run_id, "identity", "identity_map") as run:
        _settle_pending(lakehouse)
        # Pinned before the inputs are read: a commit landing during the run makes the next one differ.
        inputs = {inp.table: lakehouse.version(*split_table_name(inp.table)) for inp in cfg.inputs}
        last = None if force else _last_fingerprint(lakehouse)
        if last is not None and last == _fingerprint(lakehouse, cfg, inputs):
            run.status, run.details = "skipped", {"fingerprint": last}
            log.info("resolve %s: inputs and outputs unchanged since the last run; nothing to do", run_id)
            return {"run_id": run_id, "skipped": True}
        graph = build_graph(_read_tables(lakehouse, cfg), cfg)
        previous_map = lakehouse.read("gold", "identity_map") if lakehouse.exists("gold", "identity_map") else None
        previous_edges = previous_vertices = None
        if incremental and previous_map is not None and all(
            lakehouse.exists("silver", t) for t in ("identity_edges", "identity_vertices")
        ):
            previous_edges = lakehouse.read("silver", "identity_edges").localCheckpoint()
            previous_vertices = lakehouse.read("silver", "identity_vertices").localCheckpoint()
        if previous_map is not None:
            previous_map = previous_map.localCheckpoint()  # we overwrite the table we read from
        result, identity_map, lineage, record_map, figures = resolve_frames(
            graph, cfg, previous_map, run_id, now, previous_edges, previous_vertices
        )
        edges_out = result.edges.localCheckpoint()
        identity_map = identity_map.localCheckpoint()
        lineage = spark.createDataFrame(lineage.rdd, LINEAGE_SCHEMA) if lineage.take(1) else None
        n_lineage = 0
        if lineage is not None:  # parked before the map: see the module docstring
            lineage = lineage.localCheckpoint()
            n_lineage = lineage.count()
            lineage.write.format("delta").mode("overwrite").save(lakehouse.path(*PENDING))
        # Merged, not overwritten: their change feed then names only the customers that changed,
        # which is what keeps gold's incremental run incremental.
        with lakehouse.commit_tag(_map_tag(run_id)):
            lakehouse.sync(identity_map, "gold", "identity_map", ["id_type", "id_value"])
        lakehouse.sync(record_map, "gold", "identity_records", ["source", "record_key", "customer_id"])
        if lineage is not None:
            _append_once(lakehouse, lineage)
            lakehouse.delta(*PENDING).delete()
        # The graph last: an incremental run re-clusters what differs from it, so a run killed
        # after the map but before these sees the same differences again and redoes the same work.
        edges_out.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(
            lakehouse.path("silver", "identity_edges"))
        graph.vertices.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(
            lakehouse.path("silver", "identity_vertices"))
        for layer, table in (("silver", "identity_edges"), ("silver", "identity_vertices"), ("gold", "identity_map"),
                             ("gold", "identity_records")):
            lakehouse.register(layer, table)
        if lakehouse.exists("gold", "identity_lineage"):
            lakehouse.register("gold", "identity_lineage")
        status = {r.status: r.n for r in edges_out.groupBy("status").agg(F.count(F.lit(1)).alias("n")).collect()}
        run.rows_in = sum(status.values())
        run.rows_out = figures["identifiers"]
        figures.update({"edges": status, "lineage_rows": n_lineage, "junk_identifiers": result.junk.count(),
                        "customers": figures["clusters"], "incremental": previous_edges is not None})
        run.details = {**figures, "fingerprint": _fingerprint(lakehouse, cfg, inputs)}
        graph.release()
    log.info("resolve %s: %d identifiers in %d customers", run_id, figures["identifiers"], figures["clusters"])
    return {"run_id": run_id, "skipped": False, **figures}

