"""Guards that keep false edges from gluing strangers together.

* blocklists (values and regexes) are applied while reading records (:mod:`records`);
* :func:`junk_identifiers`: an identifier linked to more than N distinct strong ids of another
  type (an email shared by many CRM contacts) is junk and links nothing;
* per-cluster limits are enforced on the final clusters by :mod:`clustering`;
* :func:`check_giant_components` stops the run before anything is published.

Reports never carry raw identifiers: a type and a truncated SHA-256 of the value.
"""

from __future__ import annotations

import hashlib
import logging

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from cdp_lib.errors import GiantComponentError
from cdp_lib.identity.config import GiantComponentGuard, SharedIdentifierGuard

__all__ = ["redact", "constrained_values", "limit_lookup", "junk_identifiers", "check_giant_components",
           "both_directions"]

log = logging.getLogger(__name__)


def redact(id_type: str, id_value: str) -> str:
    """``type:hash12`` — safe to log, still lets an operator find the value by hashing candidates."""
    return f"{id_type}:{hashlib.sha256(id_value.encode('utf-8')).hexdigest()[:12]}"


def both_directions(edges: DataFrame) -> DataFrame:
    """(id_type, id_value, n_type, n_value) for each end of each edge."""
    a = edges.select(
        F.col("id_type_a").alias("id_type"), F.col("id_value_a").alias("id_value"),
        F.col("id_type_b").alias("n_type"), F.col("id_value_b").alias("n_value"),
    )
    b = edges.select(
        F.col("id_type_b").alias("id_type"), F.col("id_value_b").alias("id_value"),
        F.col("id_type_a").alias("n_type"), F.col("id_value_a").alias("n_value"),
    )
    return a.unionByName(b)


def constrained_values(df: DataFrame, *keep: str) -> DataFrame:
    """``keep`` columns + (``k``, ``v``): one row per ``key=value`` entry of ``df.cvals``."""
    kv = df.select(*keep, F.explode("cvals").alias("_kv"))
    return kv.select(*keep, F.split("_kv", "=", 2)[0].alias("k"), F.split("_kv", "=", 2)[1].alias("v"))


def limit_lookup(limits: dict[str, int]):
    """A map column key -> limit, to look a row's key up in: ``limit_lookup(limits)[F.col("k")]``."""
    return F.create_map(*[x for k, n in limits.items() for x in (F.lit(k), F.lit(n))])


def junk_identifiers(edges: DataFrame, guard: SharedIdentifierGuard, vertices: DataFrame | None = None) -> DataFrame:
    """Identifiers (id_type, id_value, n_type, n_linked) shared by several people.

    Linked to more than ``max_links`` distinct ids of one strong type (``n_type`` is that type),
    or to identifiers that carry more than ``max_linked_values[key]`` distinct values of ``key``
    (``n_type`` is the key; needs ``vertices`` with ``cvals``). Computed on the whole graph, so
    an incremental run and a full one agree.
    """
    # Each linked pair once (several rules and sources may link the same two identifiers): the
    # counts below are then plain counts, not distinct counts over every edge.
    pairs = edges.select("id_type_a", "id_value_a", "id_type_b", "id_value_b").distinct()
    both = both_directions(pairs)
    nb = both.where(F.col("n_type").isin(guard.strong_types) & (F.col("n_type") != F.col("id_type")))
    counts = (
        nb.groupBy("id_type", "id_value", "n_type").agg(F.count(F.lit(1)).alias("n_linked"))
        .where(F.col("n_linked") > guard.max_links)
    )
    if guard.max_linked_values and vertices is not None:
        named = vertices.select("cvals", F.col("id_type").alias("n_type"), F.col("id_value").alias("n_value"))
        values = constrained_values(named, "n_type", "n_value").where(F.col("k").isin(list(guard.max_linked_values)))
        # Only ends of the types that carry such values can match (birth dates sit on CRM ids): the
        # join then shuffles those rows of every edge end, not all of them.
        types = sorted(r.n_type for r in values.select("n_type").distinct().collect())
        linked = (
            both.where(F.col("n_type").isin(types)).join(values, ["n_type", "n_value"])
            .groupBy("id_type", "id_value", "k").agg(F.countDistinct("v").alias("n_linked"))
            .where(F.col("n_linked") > limit_lookup(guard.max_linked_values)[F.col("k")])
            .select("id_type", "id_value", F.col("k").alias("n_type"), "n_linked")
        )
        counts = counts.unionByName(linked)
    return (
        counts.groupBy("id_type", "id_value")
        .agg(F.max_by("n_type", "n_linked").alias("n_type"), F.max("n_linked").alias("n_linked"))
    )


def check_giant_components(assign: DataFrame, edges: DataFrame, guard: GiantComponentGuard) -> dict:
    """Raise :class:`GiantComponentError` when a cluster is too big; return size figures otherwise.

    Args:
        assign: ``id_type``, ``id_value``, ``component`` of every identifier.
        edges: the kept edges (canonical a/b columns), for the degree report.
    """
    sizes = assign.groupBy("component").agg(F.count(F.lit(1)).alias("size"))
    stats = sizes.agg(F.sum("size").alias("total"), F.max("size").alias("largest"), F.count(F.lit(1)).alias("n"))
    row = stats.first()
    total, largest, n = int(row.total or 0), int(row.largest or 0), int(row.n or 0)
    share_limit = guard.max_share * total if total >= guard.min_identifiers_for_share else float("inf")
    limit = min(guard.max_size, share_limit)
    figures = {"identifiers": total, "clusters": n, "largest_cluster": largest}
    if largest <= limit:
        return figures
    giants = sizes.where(F.col("size") > limit).orderBy(F.desc("size")).limit(5)
    members = assign.join(giants.select("component"), "component")
    degree = (
        both_directions(edges)
        .join(members.select("id_type", "id_value", "component"), ["id_type", "id_value"])
        .groupBy("component", "id_type", "id_value")
        .agg(F.count(F.lit(1)).alias("degree"))
        .orderBy(F.desc("degree"), "id_type", "id_value")
        .limit(guard.report_top)
        .collect()
    )
    report = [
        {"component": r.component, "identifier": redact(r.id_type, r.id_value), "degree": r.degree} for r in degree
    ]
    giant_sizes = [r.size for r in giants.collect()]
    culprits = ", ".join(f"{x['identifier']} (degree {x['degree']})" for x in report)
    err = GiantComponentError(
        f"identity clustering stopped before publishing: {len(giant_sizes)} cluster(s) of sizes {giant_sizes} "
        f"exceed the limit of {int(limit)} identifiers (max_size {guard.max_size}, max_share {guard.max_share} "
        f"of {total}); most-linked identifiers (type:sha256 prefix): {culprits}. "
        "Add junk values to identity.yaml blocklist or tighten shared_identifier."
    )
    err.report = report  # type: ignore[attr-defined]
    log.error("giant component: sizes %s, limit %d", giant_sizes, int(limit))
    raise err
