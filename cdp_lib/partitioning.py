"""Checkpoints that remember how their rows are partitioned.

A job that groups, windows and joins several inputs by the same key (gold groups everything by
``customer_id``) shuffles each input once per use unless Spark knows the input is already
partitioned by that key. :func:`checkpoint_by` hash-partitions a frame by the key and cuts its
lineage on disk; the checkpoint reports ``hashpartitioning(key, n)``, so every later aggregate,
window (partitioned by the key, or by the key and more) and join between such checkpoints, and
their unions, run without an exchange.

Adaptive query execution does not report the output partitioning of a plan before it ran
(``AdaptiveSparkPlanExec`` says ``UnknownPartitioning``), and a checkpoint takes its partitioning
from that report. The query being checkpointed (all of it, up to the frame passed in) is
therefore planned and run with AQE off; queries over the checkpoints keep AQE. The setting is
session-wide while that query runs: checkpoints are taken one at a time (a lock), and a query
another thread plans meanwhile is planned without AQE too (slower at worst, never different).
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession

__all__ = ["checkpoint_by", "static_planning"]

AQE = "spark.sql.adaptive.enabled"
_PLANNING = threading.Lock()


@contextmanager
def static_planning(spark: SparkSession):
    """Plan (and run) the queries inside without adaptive execution; restores the previous setting.

    One block at a time: two overlapping ones could otherwise restore each other's ``false``.
    """
    with _PLANNING:
        before = spark.conf.get(AQE)
        spark.conf.set(AQE, "false")
        try:
            yield
        finally:
            spark.conf.set(AQE, before)


def checkpoint_by(df: DataFrame, key: str, partitions: int | None = None) -> DataFrame:
    """``df`` hash-partitioned by ``key`` into ``partitions`` (default: the shuffle partitions), on disk.

    The result's plan is a scan that reports ``hashpartitioning(key, partitions)``: frames
    checkpointed by the same key and number of partitions are co-partitioned. The partitioning is
    reported on the key's attribute in the optimized plan; a rewrite that gives the key a new
    attribute (``dropDuplicates`` becomes an aggregate with new attributes) loses it, so build the
    frame with ``groupBy`` instead (tests check the frames that rely on it).
    """
    spark = df.sparkSession
    n = partitions or int(spark.conf.get("spark.sql.shuffle.partitions"))
    with static_planning(spark):
        return df.repartition(n, key).localCheckpoint(eager=True, storageLevel=StorageLevel.DISK_ONLY)
