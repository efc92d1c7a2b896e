"""Identifier graph -> clusters that satisfy the per-cluster limits.

1. Junk identifiers (shared-identifier guard) lose all their edges.
2. Connected components over integer vertex ids (xxhash64, collision-checked).
3. Components breaking a ``max_per_cluster`` limit (two crm_ids, two birth dates) are
   rebuilt on the driver, edge by edge from the strongest (rule priority, score, support),
   skipping every edge that would create a cluster over a limit (a constrained Kruskal).
   So the limits hold on the FINAL clusters, and the edge dropped is the weakest one
   that would have broken them.

Every step is local to a component, which is what makes :func:`update_clusters` (re-cluster
only the components a batch touches) give exactly the clusters of :func:`cluster_graph`.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from cdp_lib.errors import CdpError, GiantComponentError
from cdp_lib.identity.components import linked_components
from cdp_lib.identity.config import IdentityConfig
from cdp_lib.identity.graph import vertex_id
from cdp_lib.identity.guards import both_directions, constrained_values, junk_identifiers, limit_lookup

__all__ = ["ClusterResult", "cluster_graph", "update_clusters", "symmetric_difference", "STATUS_KEPT",
           "STATUS_JUNK", "STATUS_LIMIT"]

log = logging.getLogger(__name__)

STATUS_KEPT = "kept"
STATUS_JUNK = "junk_identifier"
STATUS_LIMIT = "cluster_limit"
_EDGE_KEY = ["id_type_a", "id_value_a", "id_type_b", "id_value_b", "rule", "source"]
# An assignment row: the identifier, its vertex id and cluster, and its first/last seen (for the map).
_ASSIGN = ["id_type", "id_value", "vid", "component", "first_seen", "last_seen"]
_REJECTED_SCHEMA = ", ".join(f"{k} string" for k in _EDGE_KEY)


@dataclass
class ClusterResult:
    assign: DataFrame  # id_type, id_value, vid, component (smallest vid of the cluster), first_seen, last_seen
    edges: DataFrame  # the input edges + status
    junk: DataFrame  # id_type, id_value, n_type, n_linked
    repaired_components: int
    # Incremental runs: the identifiers re-clustered (id_type, id_value); every other kept its cluster.
    affected: DataFrame | None = None
    # Incremental runs: a filter selecting the map rows publishing compares (the affected ones); set by resolve.
    map_scope: Callable[[DataFrame], DataFrame] | None = None


def _with_vid(vertices: DataFrame) -> DataFrame:
    v = vertices.select("id_type", "id_value", "first_seen", "last_seen", "cvals").withColumn(
        "vid", vertex_id("id_type", "id_value"))
    clash = v.groupBy("vid").agg(F.count(F.lit(1)).alias("n")).where("n > 1").limit(1).count()
    if clash:
        raise CdpError("identity vertex id collision (xxhash64); report this: it is a one-in-2^64 event")
    return v


def _kruskal(vertices: list, edges: list, limits: dict[str, int]) -> tuple[dict[int, int], set]:
    """Constrained union-find. Returns vid -> cluster label (min vid) and the rejected edge keys."""
    parent: dict[int, int] = {}
    vals: dict[int, dict[str, set]] = {}
    for vid, cvals in vertices:
        parent[vid] = vid
        d: dict[str, set] = defaultdict(set)
        for kv in cvals or []:
            k, _, val = kv.partition("=")
            d[k].add(val)
        vals[vid] = d

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    rejected = set()
    # Strongest first; a full, deterministic order so the result never depends on partitioning.
    for e in sorted(edges, key=lambda e: (-e.priority, -(e.score if e.score is not None else 1.0),
                                          -e.n_records, tuple(e[k] for k in _EDGE_KEY))):
        ra, rb = find(e.vid_a), find(e.vid_b)
        if ra == rb:
            continue
        da, db = vals[ra], vals[rb]
        ok = True
        for k, limit in limits.items():
            union = da.get(k, set()) | db.get(k, set())
            # A vertex that alone breaks a limit (one crm record, two birth dates) can still join
            # a compatible cluster; what is refused is a merge that adds new distinct values.
            if len(union) > max(limit, len(da.get(k, ())), len(db.get(k, ()))):
                ok = False
                break
        if not ok:
            rejected.add(tuple(e[k] for k in _EDGE_KEY))
            continue
        lo, hi = (ra, rb) if ra < rb else (rb, ra)
        parent[hi] = lo
        for k, s in db.items() if lo == ra else da.items():
            vals[lo].setdefault(k, set()).update(s)
    return {v: find(v) for v in parent}, rejected


def _cluster(vertices: DataFrame, edges: DataFrame, kept: DataFrame, cfg: IdentityConfig,
             closed: bool = False) -> tuple:
    """CC + limit repair on (vertices with vid, kept edges).

    Returns (assign, rejected keys df, clusters repaired, edges rejected).

    ``closed``: every end of a kept edge is one of ``vertices`` (the whole graph), so an end's vertex
    id is its hash; otherwise (a subgraph) joining the ends to ``vertices`` also drops the edges that
    leave it.
    """
    spark = vertices.sparkSession
    if closed:
        ends = kept.withColumns({"vid_a": vertex_id("id_type_a", "id_value_a"),
                                 "vid_b": vertex_id("id_type_b", "id_value_b")})
    else:
        ends = kept.join(
            vertices.select(F.col("id_type").alias("id_type_a"), F.col("id_value").alias("id_value_a"),
                            F.col("vid").alias("vid_a")), ["id_type_a", "id_value_a"]
        ).join(
            vertices.select(F.col("id_type").alias("id_type_b"), F.col("id_value").alias("id_value_b"),
                            F.col("vid").alias("vid_b")), ["id_type_b", "id_value_b"]
        )
    ends = ends.persist()
    linked = linked_components(
        ends.select(F.col("vid_a").alias("src"), F.col("vid_b").alias("dst")),
        max_iterations=cfg.max_iterations,
        local_max_edges=cfg.local_components_max_edges,
    )
    # One join gives every vertex its component; a vertex on no kept edge is its own.
    assign = (
        vertices.join(linked.withColumnRenamed("id", "vid"), "vid", "left")
        .withColumn("component", F.coalesce("component", "vid"))
        .persist()
    )
    limits = dict(cfg.max_per_cluster)
    if not limits:
        return assign.select(*_ASSIGN), spark.createDataFrame([], _REJECTED_SCHEMA), 0, 0
    exploded = constrained_values(assign, "component")
    limit_col = limit_lookup(limits)
    bad = (
        exploded.groupBy("component", "k").agg(F.countDistinct("v").alias("n"))
        .where(F.col("n") > limit_col[F.col("k")])
        .select("component").distinct()
    ).persist()
    n_bad = bad.count()
    if n_bad == 0:
        return assign.select(*_ASSIGN), spark.createDataFrame([], _REJECTED_SCHEMA), 0, 0
    bad_vertices = assign.join(F.broadcast(bad), "component").persist()
    # A few clusters' members (1,433 clusters at 1M people): matched to the edges without a shuffle.
    bad_edges = ends.join(_small(bad_vertices.select(F.col("vid").alias("vid_a")), bad_vertices.count()), "vid_a")
    n_edges = bad_edges.count()
    if n_edges > cfg.max_repair_edges:
        raise GiantComponentError(
            f"{n_bad} clusters break max_per_cluster limits with {n_edges} edges, more than max_repair_edges "
            f"({cfg.max_repair_edges}): the graph is glued by junk identifiers; extend the blocklist"
        )
    v_rows = bad_vertices.select("vid", "cvals").collect()
    e_rows = bad_edges.select("vid_a", "vid_b", "priority", "score", "n_records", *_EDGE_KEY).collect()
    labels, rejected = _kruskal([(r.vid, r.cvals) for r in v_rows], e_rows, limits)
    log.info("cluster limits: %d clusters rebuilt, %d edges dropped", n_bad, len(rejected))
    relabel = spark.createDataFrame(list(labels.items()), "vid long, new_component long")
    fixed = (
        assign.join(F.broadcast(relabel), "vid", "left")
        .withColumn("component", F.coalesce("new_component", "component"))
        .select(*_ASSIGN)
    )
    rejected_df = spark.createDataFrame(sorted(rejected), _REJECTED_SCHEMA)
    return fixed, rejected_df, n_bad, len(rejected)


# Junk identifiers and limit-rejected edges are few next to the edges (thousands against millions
# at 1M people): joined to every edge as broadcast hash joins, the edges are scanned, not shuffled.
# Above this many rows the small side is shuffled like any other join.
BROADCAST_MAX_ROWS = 1_000_000


def _small(df: DataFrame, rows: int) -> DataFrame:
    return F.broadcast(df) if rows <= BROADCAST_MAX_ROWS else df


def _status(edges: DataFrame, junk: DataFrame, rejected: DataFrame, n_junk: int, n_rejected: int) -> DataFrame:
    ja = _small(junk.select(F.col("id_type").alias("id_type_a"), F.col("id_value").alias("id_value_a"),
                            F.lit(True).alias("_ja")), n_junk)
    jb = _small(junk.select(F.col("id_type").alias("id_type_b"), F.col("id_value").alias("id_value_b"),
                            F.lit(True).alias("_jb")), n_junk)
    r = _small(rejected.withColumn("_rej", F.lit(True)), n_rejected)
    out = edges.join(ja, ["id_type_a", "id_value_a"], "left").join(jb, ["id_type_b", "id_value_b"], "left")
    out = out.join(r, _EDGE_KEY, "left")
    status = (
        F.when(F.col("_ja") | F.col("_jb"), F.lit(STATUS_JUNK))
        .when(F.col("_rej"), F.lit(STATUS_LIMIT))
        .otherwise(F.lit(STATUS_KEPT))
    )
    return out.withColumn("status", status).drop("_ja", "_jb", "_rej").select(*edges.columns, "status")


def _not_junk(edges: DataFrame, junk: DataFrame, n_junk: int) -> DataFrame:
    j = junk.select("id_type", "id_value")
    for side in ("a", "b"):
        keys = [f"id_type_{side}", f"id_value_{side}"]
        edges = edges.join(_small(j.toDF(*keys), n_junk), keys, "left_anti")
    return edges


def cluster_graph(vertices: DataFrame, edges: DataFrame, cfg: IdentityConfig) -> ClusterResult:
    """Cluster the whole graph.

    Args:
        vertices: ``id_type``, ``id_value``, ``cvals`` (see :data:`graph.VERTEX_SCHEMA`).
        edges: deduplicated edges (:data:`graph.EDGE_SCHEMA`).
    """
    v = _with_vid(vertices).persist()
    junk = junk_identifiers(edges, cfg.shared_identifier, v).persist()
    n_junk = junk.count()
    kept = _not_junk(edges, junk, n_junk)
    assign, rejected, n_bad, n_rejected = _cluster(v, edges, kept, cfg, closed=True)
    return ClusterResult(assign, _status(edges, junk, rejected, n_junk, n_rejected), junk, n_bad)


def update_clusters(
    previous: DataFrame,
    previous_edges: DataFrame,
    vertices: DataFrame,
    edges: DataFrame,
    cfg: IdentityConfig,
    touched: DataFrame,
    previous_junk: DataFrame,
) -> ClusterResult:
    """Re-cluster only the components a new batch touches; equals :func:`cluster_graph` on the whole graph.

    Re-clustered whole, with the identifiers new to the graph, are the previous components of
    every ``touched`` identifier (ends of edges added, removed or re-weighted: priority, score and
    record count order the limit repair; identifiers added, removed or whose constrained values
    changed: see :func:`builder.build_graph_incremental`) and of both ends of every edge one of
    whose ends became junk or stopped being junk. Everything else keeps its previous component.

    Args:
        previous: last assignment (``id_type``, ``id_value``, ``vid``, ``component``).
        previous_edges: last run's edges with ``status`` (same key columns as ``edges``).
        vertices, edges: the whole graph now (old and new).
        touched: ``id_type``, ``id_value``.
        previous_junk: the last run's junk identifiers (``id_type``, ``id_value``).
    """
    v = _with_vid(vertices).persist()
    junk = junk_identifiers(edges, cfg.shared_identifier, v).persist()  # a cheap aggregation: global
    flipped = symmetric_difference(junk.select("id_type", "id_value"),
                                    previous_junk.select("id_type", "id_value")).persist()
    if flipped.take(1):
        ends = both_directions(edges).select("id_type", "id_value", "n_type", "n_value")
        near = ends.join(F.broadcast(flipped), ["id_type", "id_value"])
        touched = touched.unionByName(flipped).unionByName(
            near.select(F.col("n_type").alias("id_type"), F.col("n_value").alias("id_value")))
    affected_components = _whole_components(
        touched.join(previous, ["id_type", "id_value"]).select("component").distinct(), previous, previous_edges)
    affected = (
        previous.join(affected_components, "component").select("id_type", "id_value")
        .unionByName(touched).distinct().persist()
    )
    n_affected = affected.count()
    log.info("incremental clustering: %d identifiers in affected components", n_affected)
    sub_v = v.join(affected, ["id_type", "id_value"])
    a = affected.withColumnsRenamed({"id_type": "id_type_a", "id_value": "id_value_a"})
    sub_e = edges.join(a, ["id_type_a", "id_value_a"])
    n_junk = junk.count()
    kept = _not_junk(sub_e, junk, n_junk)
    assign, rejected, n_bad, n_rejected = _cluster(sub_v, sub_e, kept, cfg)
    untouched = previous.join(affected, ["id_type", "id_value"], "left_anti").join(
        v.select("id_type", "id_value", "first_seen", "last_seen"), ["id_type", "id_value"]
    )
    merged = untouched.select(*_ASSIGN).unionByName(assign.select(*_ASSIGN))
    old_status = previous_edges.select(*_EDGE_KEY, F.col("status").alias("_old"))
    new_status = _status(sub_e, junk, rejected, n_junk, n_rejected).select(*_EDGE_KEY, F.col("status").alias("_new"))
    status = (
        edges.join(new_status, _EDGE_KEY, "left").join(old_status, _EDGE_KEY, "left")
        .withColumn("status", F.coalesce("_new", "_old", F.lit(STATUS_KEPT))).drop("_new", "_old")
    )
    # Checkpointed: the plans above stack the old and the new graph several times over, and the
    # id assignment and publishing that follow would analyse them again at every step (at 100k
    # people that planning alone exhausted a 4 GB driver heap).
    return ClusterResult(_materialize(merged), _materialize(status), junk, n_bad, affected)


def _whole_components(components: DataFrame, previous: DataFrame, previous_edges: DataFrame) -> DataFrame:
    """``components`` (previous clusters) and every cluster the limit repair had split from the same
    connected component: the repair decides over a whole component, so it is redone over all of it.

    Clusters of one component are linked by the edges the repair rejected (few: one per split), so
    they are grouped on the driver.
    """
    spark = components.sparkSession
    ends = previous.select("id_type", "id_value", "component")
    rejected = (
        previous_edges.where(F.col("status") == STATUS_LIMIT)
        .join(ends.toDF("id_type_a", "id_value_a", "c_a"), ["id_type_a", "id_value_a"])
        .join(ends.toDF("id_type_b", "id_value_b", "c_b"), ["id_type_b", "id_value_b"])
        .select("c_a", "c_b").distinct().collect()
    )
    if not rejected:
        return components
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for r in rejected:
        a, b = find(r.c_a), find(r.c_b)
        if a != b:
            parent[max(a, b)] = min(a, b)
    groups = spark.createDataFrame([(c, find(c)) for c in list(parent)], "component long, grp long")
    mates = components.join(F.broadcast(groups), "component").select("grp").join(F.broadcast(groups), "grp")
    return components.unionByName(mates.select("component")).distinct()


def symmetric_difference(a: DataFrame, b: DataFrame) -> DataFrame:
    """Rows in exactly one of ``a`` and ``b`` (set semantics, nulls compare equal)."""
    return a.subtract(b).unionByName(b.subtract(a))


def _materialize(df: DataFrame) -> DataFrame:
    return df.localCheckpoint(eager=True, storageLevel=StorageLevel.DISK_ONLY)

