"""Proves the runtime: Delta write, MERGE, time travel, and connected components."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from cdp_lib.identity.components import connected_components

if TYPE_CHECKING:  # executors import this module for the UDF; keep delta off their path
    from cdp_lib.lakehouse import Lakehouse

__all__ = ["run_smoke", "component_label"]


def component_label(component: int) -> str:
    """Runs on executors as a Python UDF: proves cdp_lib reached them (--py-files)."""
    return f"customer-{component}"


def run_smoke(spark: SparkSession, lakehouse: Lakehouse) -> dict:
    """Write, MERGE and read back ``ops.smoke``; cluster a small known graph.

    Returns a summary with the rows after MERGE, the version-0 row count read by time
    travel, and the components found (a list of sorted member lists).
    """
    path = lakehouse.path("ops", "smoke")
    spark.createDataFrame([(1, "a"), (2, "b")], "id long, value string").write.format("delta").mode(
        "overwrite"
    ).save(path)
    written = lakehouse.version("ops", "smoke")  # this run's overwrite (version 0 is the first run's ever)
    updates = spark.createDataFrame([(2, "B"), (3, "c")], "id long, value string")
    (
        lakehouse.delta("ops", "smoke")
        .alias("t")
        .merge(updates.alias("s"), "t.id = s.id")
        .whenMatchedUpdateAll()
        .whenNotMatchedInsertAll()
        .execute()
    )
    after = sorted((r.id, r.value) for r in lakehouse.read("ops", "smoke").collect())
    first = lakehouse.read("ops", "smoke", written).count()
    lakehouse.register("ops", "smoke")

    edges = spark.createDataFrame([(1, 2), (2, 3), (10, 11), (20, 20)], "src long, dst long")
    vertices = spark.createDataFrame([(i,) for i in (1, 2, 3, 10, 11, 20, 30)], "id long")
    comps = connected_components(vertices, edges)
    label = F.udf(component_label, "string")
    grouped = comps.groupBy("component").agg(F.sort_array(F.collect_list("id")).alias("members"))
    rows = grouped.select("members", label("component").alias("label")).collect()
    components = sorted(list(r.members) for r in rows)
    return {
        "rows": after,
        "version0_rows": first,
        "components": components,
        "labels": sorted(r.label for r in rows),
    }
