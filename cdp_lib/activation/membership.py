"""gold.segment_membership: who is in which segment, with history.

One row per stay of a customer in a segment: ``entered_at`` when a run first saw them
in it, ``exited_at`` when a later run no longer did (null while they are still in).
Re-entering opens a new row, so the table answers both "who is in now" and "how big was
the segment at time t". Every run is a single Delta MERGE (atomic), and a run that
changes nothing commits nothing (idempotent).
"""

from __future__ import annotations

import logging
from datetime import datetime

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

__all__ = [
    "MEMBERSHIP_SCHEMA",
    "membership_changes",
    "merge_membership",
    "current_members",
    "members_at",
    "segment_size_over_time",
    "build_segment_membership",
]

log = logging.getLogger(__name__)

MEMBERSHIP_SCHEMA = T.StructType(
    [
        T.StructField("segment", T.StringType(), False),
        T.StructField("customer_id", T.StringType(), False),
        T.StructField("entered_at", T.TimestampType(), False),
        T.StructField("exited_at", T.TimestampType(), True),
        T.StructField("run_id", T.StringType(), False),
    ]
)


def _ts(value: datetime):
    return F.lit(value.replace(tzinfo=None)).cast("timestamp")


def current_members(membership: DataFrame) -> DataFrame:
    """Rows of the members right now (``exited_at`` is null)."""
    return membership.where(F.col("exited_at").isNull())


def members_at(membership: DataFrame, at: datetime) -> DataFrame:
    """(segment, customer_id) of the members at time ``at``."""
    t = _ts(at)
    return membership.where(
        (F.col("entered_at") <= t) & (F.col("exited_at").isNull() | (F.col("exited_at") > t))
    ).select("segment", "customer_id")


def segment_size_over_time(membership: DataFrame) -> DataFrame:
    """(segment, at, size): the segment size after every run that changed it, in time order."""
    changes = membership.select("segment", F.col("entered_at").alias("at"), F.lit(1).alias("delta")).unionByName(
        membership.where(F.col("exited_at").isNotNull()).select(
            "segment", F.col("exited_at").alias("at"), F.lit(-1).alias("delta")
        )
    )
    from pyspark.sql.window import Window

    w = Window.partitionBy("segment").orderBy("at").rowsBetween(Window.unboundedPreceding, Window.currentRow)
    return (
        changes.groupBy("segment", "at")
        .agg(F.sum("delta").alias("delta"))
        .select("segment", "at", F.sum("delta").over(w).cast("long").alias("size"))
    )


def membership_changes(open_rows: DataFrame, current: DataFrame, segments: list[str]) -> DataFrame:
    """(segment, customer_id, action) with action ``enter`` or ``exit``.

    Args:
        open_rows: membership rows with ``exited_at`` null.
        current: (segment, customer_id) evaluated this run.
        segments: the segments evaluated this run; members of other segments are left alone.
    """
    now = current.select("segment", "customer_id").distinct()
    was = open_rows.where(F.col("segment").isin(segments)).select("segment", "customer_id")
    enters = now.join(was, ["segment", "customer_id"], "left_anti").withColumn("action", F.lit("enter"))
    exits = was.join(now, ["segment", "customer_id"], "left_anti").withColumn("action", F.lit("exit"))
    return enters.unionByName(exits)


def merge_membership(spark: SparkSession, path: str, current: DataFrame, segments: list[str],
                     as_of: datetime, run_id: str) -> dict[str, int]:
    """Apply one run's evaluation to the membership table at ``path`` (one commit, or none).

    New members get a row entered at ``as_of``; members no longer in a segment get
    ``exited_at = as_of``; a returning member gets a new row. Returns counts.
    """
    if not DeltaTable.isDeltaTable(spark, path):
        first = current.select(
            "segment", "customer_id", _ts(as_of).alias("entered_at"),
            F.lit(None).cast("timestamp").alias("exited_at"), F.lit(run_id).alias("run_id"),
        ).distinct()
        first.write.format("delta").save(path)
        entered = spark.read.format("delta").load(path).count()
        log.info("segment_membership created: %d entries", entered)
        return {"entered": entered, "exited": 0}

    target = DeltaTable.forPath(spark, path)
    changes = membership_changes(current_members(target.toDF()), current, segments).localCheckpoint()
    counts = {r["action"]: r["n"] for r in changes.groupBy("action").agg(F.count("*").alias("n")).collect()}
    entered, exited = counts.get("enter", 0), counts.get("exit", 0)
    if entered == 0 and exited == 0:
        log.info("segment_membership unchanged (run %s)", run_id)
        return {"entered": 0, "exited": 0}
    ts = _ts(as_of)
    (
        target.alias("t")
        .merge(
            changes.alias("s"),
            "t.segment = s.segment AND t.customer_id = s.customer_id AND t.exited_at IS NULL AND s.action = 'exit'",
        )
        .whenMatchedUpdate(set={"exited_at": ts})
        .whenNotMatchedInsert(
            condition="s.action = 'enter'",
            values={
                "segment": "s.segment",
                "customer_id": "s.customer_id",
                "entered_at": ts,
                "exited_at": "CAST(NULL AS TIMESTAMP)",
                "run_id": F.lit(run_id),
            },
        )
        .execute()
    )
    log.info("segment_membership merged: %d entered, %d exited (run %s)", entered, exited, run_id)
    return {"entered": entered, "exited": exited}


def build_segment_membership(lakehouse, config, as_of: datetime, run_id: str,
                             events: DataFrame | None = None) -> dict[str, int]:
    """Evaluate every segment at ``as_of`` and MERGE the result into gold.segment_membership.

    ``events`` defaults to silver.events linked through gold.identity_map, read only when a
    segment has an event condition.
    """
    from cdp_lib.activation.segments import customer_events, evaluate_segments

    profile = lakehouse.read("gold", "customer_profile")
    if events is None and any(s.events for s in config.segments):
        events = customer_events(lakehouse.read("silver", "events"), lakehouse.read("gold", "identity_map"))
    current = evaluate_segments(profile, events, config, as_of)
    path = lakehouse.path("gold", "segment_membership")
    counts = merge_membership(lakehouse.spark, path, current, [s.name for s in config.segments], as_of, run_id)
    lakehouse.register("gold", "segment_membership")
    return counts
