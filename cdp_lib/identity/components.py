"""Connected components of a large undirected graph, as DataFrames.

This is the alternating *large-star / small-star* algorithm of Kiveris et al.,
"Connected Components in MapReduce and Beyond" (SoCC 2014): the algorithm behind
GraphFrames' default ``connectedComponents``, which converges in O(log^2 n) rounds
whatever the graph's diameter. It is written here in plain Spark SQL because
GraphFrames' JVM artifacts (``io.graphframes:graphframes-spark4_2.13``) cannot be
resolved from the Maven Central served to this project (see README, "GraphFrames").

Vertex ids must be integers (``long``); every vertex's component is the smallest
vertex id in it, so results are deterministic.

Small graphs (at most ``local_max_edges`` edges: a small tenant, or the few components an
incremental batch touches) are solved on the driver with union-find instead: the same answer
in one collect rather than a dozen checkpointed rounds of Spark jobs.
"""

from __future__ import annotations

import logging

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from cdp_lib.errors import CdpError

__all__ = ["connected_components"]

log = logging.getLogger(__name__)


def _canonical(edges: DataFrame) -> DataFrame:
    """Undirected edges as (lo, hi) with lo < hi, no self loops, no duplicates."""
    return (
        edges.select(F.least("src", "dst").alias("lo"), F.greatest("src", "dst").alias("hi"))
        .where(F.col("lo") != F.col("hi"))
        .distinct()
    )


def _large_star(e: DataFrame) -> DataFrame:
    # Every node u links each larger neighbour v to m(u) = min(N(u) ∪ {u}).
    both = e.select(F.col("lo").alias("u"), F.col("hi").alias("v")).unionByName(
        e.select(F.col("hi").alias("u"), F.col("lo").alias("v"))
    )
    mins = both.groupBy("u").agg(F.least(F.min("v"), F.col("u")).alias("m"))
    out = both.join(mins, "u").where(F.col("v") > F.col("u")).select(F.col("v").alias("src"), F.col("m").alias("dst"))
    return _canonical(out)


def _small_star(e: DataFrame) -> DataFrame:
    # Every node u links itself and each smaller neighbour v to m = min(smaller neighbours ∪ {u}).
    mins = e.groupBy("hi").agg(F.min("lo").alias("m"))
    joined = e.join(mins, "hi")
    out = joined.select(F.col("lo").alias("src"), F.col("m").alias("dst")).unionByName(
        joined.select(F.col("hi").alias("src"), F.col("m").alias("dst"))
    )
    return _canonical(out)


def _star_components(edges: DataFrame, max_iterations: int) -> DataFrame:
    e = _canonical(edges).checkpoint(eager=True)
    previous = e.count()
    for iteration in range(1, max_iterations + 1):
        nxt = _small_star(_large_star(e)).checkpoint(eager=True)
        size = nxt.count()
        # The edge set only shrinks or is rewired towards smaller ids; once a round leaves
        # it unchanged every edge is (component minimum, member).
        changed = size != previous or nxt.exceptAll(e).limit(1).count() > 0
        log.debug("connected components round %d: %d edges", iteration, size)
        e, previous = nxt, size
        if not changed:
            return e.select(F.col("hi").alias("id"), F.col("lo").alias("component"))
    raise CdpError(f"connected components did not converge in {max_iterations} rounds")


def _union_find_components(edges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """``(id, component)`` for every vertex on an edge; component = smallest id of the component."""
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:  # path compression
            parent[x], x = root, parent[x]
        return root

    for a, b in edges:
        parent.setdefault(a, a)
        parent.setdefault(b, b)
        ra, rb = find(a), find(b)
        if ra != rb:
            lo, hi = (ra, rb) if ra < rb else (rb, ra)
            parent[hi] = lo  # roots are always the smallest id seen in their set
    return [(v, find(v)) for v in parent]


def connected_components(
    vertices: DataFrame,
    edges: DataFrame,
    *,
    max_iterations: int = 100,
    local_max_edges: int = 0,
) -> DataFrame:
    """Component of every vertex.

    Args:
        vertices: one column ``id`` (long). Vertices without edges are their own component.
        edges: columns ``src``, ``dst`` (long); direction is ignored.
        max_iterations: safety bound; real graphs converge in far fewer rounds.
        local_max_edges: graphs with at most this many distinct edges are solved on the driver.

    Returns:
        ``id``, ``component`` where ``component`` is the smallest id in the component.
        Needs a checkpoint directory set on the SparkContext (distributed path).
    """
    spark = vertices.sparkSession
    linked = None
    if local_max_edges > 0:
        # Probe the raw edges (no shuffle): only a small graph is collected; duplicates and self
        # loops do not change union-find's answer.
        small = edges.select("src", "dst").limit(local_max_edges + 1).collect()
        if len(small) <= local_max_edges:
            pairs = _union_find_components([(r.src, r.dst) for r in small if r.src != r.dst])
            linked = spark.createDataFrame(pairs, "id long, component long")
            log.debug("connected components: %d edges solved on the driver", len(small))
    if linked is None:
        linked = _star_components(edges, max_iterations)
    return (
        vertices.select("id")
        .distinct()
        .join(linked, "id", "left")
        .select("id", F.coalesce("component", "id").alias("component"))
    )
