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
session-wide while that query runs: checkpoint calls take turns (a lock; the frames of one
:func:`checkpoint_all` call run two at a time inside it), and a query another thread plans
meanwhile is planned without AQE too (slower at worst, never different).
"""

from __future__ import annotations

import threading
from collections import deque
from contextlib import contextmanager

from pyspark import InheritableThread, StorageLevel
from pyspark.sql import DataFrame, SparkSession

from cdp_lib.lanes import run_lanes

__all__ = ["checkpoint_all", "checkpoint_by", "static_planning"]

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
    return checkpoint_all([df], key, partitions)[0]


def checkpoint_all(frames: list[DataFrame], key: str, partitions: int | None = None,
                   parallel: int = 2) -> list[DataFrame]:
    """:func:`checkpoint_by` of each frame (in the same order), ``parallel`` queries at a time.

    The frames are independent queries: while one is planned on the driver (Delta snapshots,
    Catalyst) another one's tasks run, where one at a time would leave the cores idle between
    small jobs. The tasks of all of them still share the same cores. Each query runs in a thread
    that inherits the caller's local properties (job group, scheduler pool). After a failure no
    other starts, the running ones finish, and the first failure is raised.
    """
    if not frames:
        return []
    spark = frames[0].sparkSession
    n = partitions or int(spark.conf.get("spark.sql.shuffle.partitions"))

    def one(df: DataFrame) -> DataFrame:
        return df.repartition(n, key).localCheckpoint(eager=True, storageLevel=StorageLevel.DISK_ONLY)

    with static_planning(spark):
        if parallel <= 1 or len(frames) == 1:
            return [one(df) for df in frames]
        pending = deque(enumerate(frames))
        done: dict[int, DataFrame] = {}
        failed: list[BaseException] = []
        lock = threading.Lock()

        def lane() -> None:
            while True:
                with lock:
                    if failed or not pending:
                        return
                    i, df = pending.popleft()
                try:
                    done[i] = one(df)
                except BaseException as exc:  # noqa: BLE001 - raised again in the calling thread
                    with lock:
                        failed.append(exc)

        # InheritableThread: a lane's jobs carry the caller's local properties (job group, pool).
        lanes = [InheritableThread(target=lane, name=f"checkpoint-{i}") for i in range(min(parallel, len(frames)))]
        run_lanes(lanes, failed, lock)
        if failed:
            raise failed[0]
        return [done[i] for i in range(len(frames))]
