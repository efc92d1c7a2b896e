"""Stable customer ids across runs, and the lineage of merges and splits.

* A cluster inherits the customer_id of its members' previous cluster.
* A previous customer_id whose members now sit in several clusters (a split) stays with the
  cluster holding most of them (ties: the cluster with the smallest vertex id); the other
  parts get new ids (or the id they inherit otherwise) and a ``split`` lineage row.
* A cluster that is the heir of several previous ids (a merge) keeps the oldest one (the
  earliest ``created_at``, then the smallest id); each absorbed id gets a ``merge`` row.
"""

from __future__ import annotations

from datetime import datetime

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

__all__ = ["MAP_SCHEMA", "LINEAGE_SCHEMA", "assign_customer_ids"]

MAP_SCHEMA = T.StructType(
    [
        T.StructField("id_type", T.StringType(), False),
        T.StructField("id_value", T.StringType(), False),
        T.StructField("customer_id", T.StringType(), False),
        T.StructField("first_seen", T.TimestampType(), True),
        T.StructField("last_seen", T.TimestampType(), True),
        T.StructField("run_id", T.StringType(), False),  # the run that last changed this row's customer_id
        T.StructField("created_at", T.TimestampType(), False),  # when customer_id was minted
    ]
)

LINEAGE_SCHEMA = T.StructType(
    [
        T.StructField("run_id", T.StringType(), False),
        T.StructField("event", T.StringType(), False),  # merge | split
        T.StructField("from_customer_id", T.StringType(), False),  # absorbed id / id that was split
        T.StructField("to_customer_id", T.StringType(), False),  # surviving id / id of the split-off part
        T.StructField("n_identifiers", T.LongType(), False),  # identifiers of from_customer_id that moved
        T.StructField("recorded_at", T.TimestampType(), False),
    ]
)


def assign_customer_ids(
    assign: DataFrame, previous: DataFrame | None, run_id: str, now: datetime
) -> tuple[DataFrame, DataFrame]:
    """Customer ids for the clusters of this run.

    Args:
        assign: ``id_type``, ``id_value``, ``component`` (any grouping key of the new clusters),
            ``first_seen``, ``last_seen`` (the identifier's, from the graph).
        previous: the last gold.identity_map (:data:`MAP_SCHEMA`) or None on the first run.

    Returns:
        (identity map, lineage rows of this run).
    """
    spark = assign.sparkSession
    if previous is None:
        previous = spark.createDataFrame([], MAP_SCHEMA)
    ts = F.lit(now).cast("timestamp")
    prev = previous.select(
        "id_type", "id_value", F.col("customer_id").alias("prev_cid"),
        F.col("first_seen").alias("prev_first"), F.col("run_id").alias("prev_run"),
        F.col("created_at").alias("prev_created"),
    )
    j = assign.select("id_type", "id_value", "component", "first_seen", "last_seen").join(
        prev, ["id_type", "id_value"], "left").persist()
    parts = (
        j.where(F.col("prev_cid").isNotNull())
        .groupBy("component", "prev_cid")
        .agg(F.count(F.lit(1)).alias("n"), F.min("prev_created").alias("created"))
    )
    by_cid = Window.partitionBy("prev_cid").orderBy(F.desc("n"), F.asc("component"))
    parts = parts.withColumn("heir", F.row_number().over(by_cid) == 1).persist()
    by_comp = Window.partitionBy("component").orderBy(F.asc("created"), F.asc("prev_cid"))
    inherited = (
        parts.where("heir")
        .withColumn("rank", F.row_number().over(by_comp))
        .where("rank = 1")
        .select("component", F.col("prev_cid").alias("customer_id"), F.col("created").alias("created_at"))
    )
    new_ids = (
        j.groupBy("component")
        .agg(F.min(F.struct("id_type", "id_value")).alias("m"))
        .join(inherited.select("component"), "component", "left_anti")
        .select(
            "component",
            F.concat(
                F.lit("c"),
                F.substring(F.sha2(F.concat_ws("\u0001", F.lit(run_id), F.col("m.id_type"), F.col("m.id_value")), 256),
                            1, 20),
            ).alias("customer_id"),
            ts.alias("created_at"),
        )
    )
    ids = inherited.unionByName(new_ids).persist()
    changed = F.col("prev_cid").isNull() | (F.col("prev_cid") != F.col("customer_id"))
    identity_map = (
        j.join(ids, "component")
        .select(
            "id_type", "id_value", "customer_id",
            F.least("first_seen", "prev_first").alias("first_seen"),
            "last_seen",
            F.when(changed, F.lit(run_id)).otherwise(F.col("prev_run")).alias("run_id"),
            "created_at",
        )
    )
    merges = (
        parts.where("heir").join(ids, "component")
        .where(F.col("prev_cid") != F.col("customer_id"))
        .select(F.lit("merge").alias("event"), F.col("prev_cid").alias("from_customer_id"),
                F.col("customer_id").alias("to_customer_id"), F.col("n").alias("n_identifiers"))
    )
    splits = (
        parts.where(~F.col("heir")).join(ids, "component")
        .select(F.lit("split").alias("event"), F.col("prev_cid").alias("from_customer_id"),
                F.col("customer_id").alias("to_customer_id"), F.col("n").alias("n_identifiers"))
    )
    lineage = merges.unionByName(splits).select(
        F.lit(run_id).alias("run_id"), "event", "from_customer_id", "to_customer_id", "n_identifiers",
        ts.alias("recorded_at"),
    )
    return identity_map, lineage
