"""Silver's one-window de-duplication against its two-step definition, on many random batches."""

import random
from datetime import datetime

import pytest
from chispa import assert_df_equality
from pyspark.sql import Window
from pyspark.sql import functions as F

from cdp_lib.silver.dedupe import pick_one, with_row_hash


def _first(df, partition, order):
    w = Window.partitionBy(*partition).orderBy(*order)
    return df.withColumn("__n", F.row_number().over(w)).where("__n = 1").drop("__n")


def _two_steps(df, keep):
    """The definition: drop exact duplicates (the earliest ingested copy of each version), then pick
    the version (latest: greatest updated_at, nulls lose, then greatest hash; first: earliest
    ingested, then smallest hash)."""
    copies = _first(df, ["key", "_row_hash"], [F.col("_ingested_at").asc_nulls_last(),
                                              F.col("_batch_id").asc_nulls_last(), F.col("_record_key").asc()])
    if keep == "latest":
        return _first(copies, ["key"], [F.col("updated_at").desc_nulls_last(), F.col("_row_hash").desc()])
    return _first(copies, ["key"], [F.col("_ingested_at").asc_nulls_last(), F.col("_row_hash").asc()])


@pytest.mark.parametrize("keep", ["latest", "first"])
def test_pick_one_equals_dropping_copies_then_picking_a_version(spark, keep):
    rng = random.Random(7)
    times = [None, datetime(2026, 1, 1), datetime(2026, 1, 2)]
    rows = []
    for key in range(300):  # each key: a few versions, each delivered a few times
        for n in range(rng.randint(1, 6)):
            value, updated = rng.choice("ab"), rng.choice(times)
            for _ in range(rng.randint(1, 3)):
                rows.append((key, value, updated, rng.choice(times), rng.choice([None, "b1", "b2"]),
                             f"r{key}-{n}-{len(rows)}"))
    df = spark.createDataFrame(
        rows, "key int, value string, updated_at timestamp, _ingested_at timestamp, _batch_id string, "
              "_record_key string").transform(with_row_hash, ["key", "value", "updated_at"]).repartition(3)
    actual = pick_one(df, ["key"], keep, "updated_at" if keep == "latest" else None)
    expected = _two_steps(df, keep)
    assert actual.count() == 300
    assert_df_equality(actual, expected, ignore_row_order=True)


def test_versions_apart_by_microseconds_hash_alike_and_the_later_wins(spark):
    # _row_hash sees times to the millisecond, so these two versions count as copies of each other.
    # The later one wins anyway, as the MERGE of a later batch would let it.
    df = spark.createDataFrame(
        [(1, "a", datetime(2026, 1, 1, 0, 0, 0, 1), datetime(2026, 1, 1), "b1", "r1"),
         (1, "a", datetime(2026, 1, 1, 0, 0, 0, 2), datetime(2026, 1, 2), "b2", "r2")],
        "key int, value string, updated_at timestamp, _ingested_at timestamp, _batch_id string, _record_key string",
    ).transform(with_row_hash, ["key", "value", "updated_at"])
    assert df.select("_row_hash").distinct().count() == 1
    assert [r._record_key for r in pick_one(df, ["key"], "latest", "updated_at").collect()] == ["r2"]
