"""Connected components of a large undirected graph, as DataFrames.

This is the alternating *large-star / small-star* algorithm of Kiveris et al.,
"Connected Components in MapReduce and Beyond" (SoCC 2014): the algorithm behind
GraphFrames' default ``connectedComponents``, which converges in O(log^2 n) rounds
whatever the graph's diameter. It is written here in plain Spark SQL because
GraphFrames' JVM artifacts (``io.graphframes:graphframes-spark4_2.13``) cannot be
resolved from the Maven Central served to this project (see README, "GraphFrames").

Vertex ids must be integers (``long``); every vertex's component is the smallest
vertex id in it, so results are deterministic.

Graphs of at most ``local_max_edges`` edges (up to tens of millions: a single-machine
deployment, a small tenant, or the few components an incremental batch touches) are solved on
the driver instead: the edges come over as Arrow columns and SciPy's compiled
``csgraph.connected_components`` labels them, the same answer in one collect rather than a
handful of checkpointed rounds of Spark jobs (at 100k people, ~520k edges: seconds instead of
~50 s). Larger graphs, on a cluster, take the distributed rounds.
"""

from __future__ import annotations

import logging

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components as scipy_components

from cdp_lib.errors import CdpError

__all__ = ["connected_components", "linked_components"]

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


def _driver_components(edges: DataFrame) -> DataFrame:
    """(id, component) for every vertex on an edge, computed on the driver (Arrow + SciPy)."""
    spark = edges.sparkSession
    table = edges.select("src", "dst").toArrow()
    src = table.column("src").to_numpy()
    dst = table.column("dst").to_numpy()
    ids, index = np.unique(np.concatenate([src, dst]), return_inverse=True)  # ids ascending
    n = len(ids)
    adjacency = coo_matrix((np.ones(len(src), dtype=np.int8), (index[: len(src)], index[len(src):])), shape=(n, n))
    _, labels = scipy_components(adjacency, directed=False)
    # ids are sorted, so a label's first position holds its component's smallest id.
    _, first = np.unique(labels, return_index=True)
    component = ids[first][labels]
    return spark.createDataFrame(pa.table({"id": ids.astype(np.int64), "component": component.astype(np.int64)}))


def linked_components(edges: DataFrame, *, max_iterations: int = 100, local_max_edges: int = 0) -> DataFrame:
    """``id``, ``component`` (the smallest id in it) of every vertex on an edge.

    Args:
        edges: columns ``src``, ``dst`` (long); direction is ignored.
        max_iterations: safety bound; real graphs converge in far fewer rounds.
        local_max_edges: graphs with at most this many distinct edges are solved on the driver.

    Needs a checkpoint directory set on the SparkContext (distributed path).
    """
    if local_max_edges > 0:
        # Counted, not collected, first: a graph over the bound is never pulled to the driver.
        # Duplicates and self loops count but do not change the answer.
        n_edges = edges.count()
        if n_edges <= local_max_edges:
            log.debug("connected components: %d edges solved on the driver", n_edges)
            return _driver_components(edges)
    return _star_components(edges, max_iterations)


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
        edges, max_iterations, local_max_edges: see :func:`linked_components`.

    Returns:
        ``id``, ``component`` where ``component`` is the smallest id in the component.
    """
    linked = linked_components(edges, max_iterations=max_iterations, local_max_edges=local_max_edges)
    return (
        vertices.select("id")
        .distinct()
        .join(linked, "id", "left")
        .select("id", F.coalesce("component", "id").alias("component"))
    )
