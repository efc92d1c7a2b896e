"""checkpoint_by: co-partitioned checkpoints that later aggregates, windows, unions and joins need not shuffle."""

import pytest
from chispa import assert_df_equality
from pyspark.sql import Window
from pyspark.sql import functions as F

from cdp_lib.partitioning import AQE, checkpoint_all, checkpoint_by
from tests.plans import adaptive, shuffles


def test_checkpoints_by_the_same_key_are_used_without_an_exchange(spark):
    a0 = spark.range(2000).select((F.col("id") % 97).cast("string").alias("k"), F.col("id").alias("x"))
    b0 = spark.range(500).select((F.col("id") % 89).cast("string").alias("k"), (F.col("id") % 3).alias("y"))
    with adaptive(spark):
        a, b = checkpoint_by(a0, "k"), checkpoint_by(b0, "k")
        assert spark.conf.get(AQE) == "true"  # restored after each checkpoint
        grouped = a.groupBy("k").agg(F.sum("x").alias("s"))
        top = b.withColumn("r", F.row_number().over(Window.partitionBy("k", "y").orderBy("y"))).where("r = 1")
        union = a.select("k").unionByName(b.select("k")).groupBy("k").count()
        assert shuffles(grouped.join(top, "k", "left").join(union, "k", "left")) == 0
        # The control: an aggregate of the frame before its checkpoint shuffles it.
        assert shuffles(a0.groupBy("k").agg(F.sum("x").alias("s"))) > 0
    assert_df_equality(a, a0, ignore_row_order=True)  # same rows


def test_a_failed_checkpoint_restores_adaptive_execution(spark):
    bad = spark.range(3).select(F.assert_true(F.col("id") < 1, "boom").alias("k"))
    with adaptive(spark):
        with pytest.raises(Exception, match="boom"):
            checkpoint_by(bad, "k")
        assert spark.conf.get(AQE) == "true"


def test_checkpoint_all_keeps_order_and_partitioning_and_stops_after_a_failure(spark):
    frames = [spark.range(n).select((F.col("id") % 7).cast("string").alias("k"), F.lit(n).alias("n"))
              for n in (10, 20, 30, 40)]
    with adaptive(spark):
        done = checkpoint_all(frames, "k")
        assert spark.conf.get(AQE) == "true"
        assert [r.n for r in (d.select("n").distinct().first() for d in done)] == [10, 20, 30, 40]
        for d, f in zip(done, frames, strict=True):
            assert shuffles(d.groupBy("k").count()) == 0
            assert_df_equality(d, f, ignore_row_order=True)
    # a failure: no frame starts after it (both lanes fail on their first frame), and it is raised
    started = spark.sparkContext.accumulator(0)

    def mark(rows):
        started.add(1)
        return rows

    def marked():
        rows = spark.range(4).select(F.col("id").cast("string").alias("k")).rdd.mapPartitions(mark)
        return spark.createDataFrame(rows, "k string")  # a schema given: no job to infer one

    bad = spark.range(3).select(F.assert_true(F.col("id") < 1, "boom").alias("k"))
    with adaptive(spark):
        with pytest.raises(Exception, match="boom"):
            checkpoint_all([bad, bad, marked(), marked()], "k")
        assert spark.conf.get(AQE) == "true"
    assert started.value == 0
    checkpoint_all([marked(), marked()], "k")  # the control: a marked frame's checkpoint counts
    assert started.value > 0
