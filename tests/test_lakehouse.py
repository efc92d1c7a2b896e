"""Lakehouse: sync (a table made equal to a frame by merging only the difference), properties,
compaction and change feeds."""

from __future__ import annotations

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from cdp_lib.errors import CdpError
from cdp_lib.lakehouse import ChangeFeedUnavailable, Lakehouse, VersionUnavailable
from tests.silver_fixtures import lakehouse_at

SCHEMA = "k1 string, k2 int, v string, w long"


def test_sync_commits_only_what_changed(spark, settings, fresh_dir):
    lh = lakehouse_at(spark, settings, fresh_dir)
    first = [("a", 1, "x", 1), ("a", 2, None, 2), ("b", 1, "y", 3), (None, 9, "nullkey", 4)]
    assert lh.sync(spark.createDataFrame(first, SCHEMA), "gold", "t", ["k1", "k2"]) == 4
    v0 = lh.version("gold", "t")
    # the same rows (nulls included) again: nothing to commit
    assert lh.sync(spark.createDataFrame(list(reversed(first)), SCHEMA), "gold", "t", ["k1", "k2"]) == 0
    assert lh.version("gold", "t") == v0
    # one value changed (null -> "z"), one row gone, one row new, the rest untouched
    second = [("a", 1, "x", 1), ("a", 2, "z", 2), (None, 9, "nullkey", 4), ("c", 1, "new", 5)]
    assert lh.sync(spark.createDataFrame(second, SCHEMA), "gold", "t", ["k1", "k2"]) == 3
    assert lh.version("gold", "t") == v0 + 1
    assert_df_equality(lh.read("gold", "t"), spark.createDataFrame(second, SCHEMA), ignore_row_order=True,
                       ignore_nullable=True)
    feed = (
        spark.read.format("delta").option("readChangeFeed", "true").option("startingVersion", v0 + 1)
        .load(lh.path("gold", "t")).select("k1", "k2", "v", "_change_type")
    )
    expected = spark.createDataFrame(
        [("a", 2, None, "update_preimage"), ("a", 2, "z", "update_postimage"), ("b", 1, "y", "delete"),
         ("c", 1, "new", "insert")], "k1 string, k2 int, v string, _change_type string")
    assert_df_equality(feed, expected, ignore_row_order=True, ignore_nullable=True)
    assert feed.where(F.col("k1").isNull()).count() == 0  # a null key matches itself


def test_sync_rewrites_a_table_whose_columns_changed(spark, settings, fresh_dir):
    lh = lakehouse_at(spark, settings, fresh_dir)
    lh.sync(spark.createDataFrame([("a", 1, "x", 1)], SCHEMA), "gold", "t", ["k1", "k2"])
    # a new column (a new trait): kept, not ignored by the MERGE
    wider = spark.createDataFrame([("a", 1, "x", 1, 0.5), ("b", 2, "y", 2, None)], SCHEMA + ", extra double")
    assert lh.sync(wider, "gold", "t", ["k1", "k2"], compare=["v"]) == 2
    assert_df_equality(lh.read("gold", "t"), wider, ignore_row_order=True, ignore_nullable=True,
                       ignore_column_order=True)
    # a scoped sync publishes part of the table: it cannot rewrite it, and says so
    with pytest.raises(CdpError, match="columns differ"):
        lh.sync(spark.createDataFrame([("a", 1, "x", 1)], SCHEMA), "gold", "t", ["k1", "k2"],
                scope=lambda df: df.where("k1 = 'a'"))
    assert lh.read("gold", "t").count() == 2


def test_set_properties_commits_only_what_is_missing(spark, settings, fresh_dir):
    lh = lakehouse_at(spark, settings, fresh_dir)
    lh.sync(spark.createDataFrame([("a", 1, "x", 1)], SCHEMA), "gold", "t", ["k1", "k2"])
    v = lh.version("gold", "t")
    assert not lh.set_properties("gold", "t", {"delta.enableDeletionVectors": "false"})  # unset is false
    assert lh.set_properties("gold", "t", {"delta.enableDeletionVectors": "true"})
    assert not lh.set_properties("gold", "t", {"delta.enableDeletionVectors": "true"})
    assert lh.version("gold", "t") == v + 1
    with pytest.raises(CdpError, match="only letters"):
        lh.set_properties("gold", "t", {"delta.appendOnly": "true') --"})


def test_compact_counts_the_changes_since_the_files_were_last_rewritten(spark, settings, fresh_dir):
    lh = lakehouse_at(spark, settings, fresh_dir)
    path = lh.path("gold", "t")
    spark.createDataFrame([("a", 1, "x", 1)], SCHEMA).write.format("delta").save(path)
    spark.createDataFrame([("b", 1, "y", 2)], SCHEMA).write.format("delta").mode("append").save(path)
    assert not lh.compact("gold", "t", 2)  # one append since the table was written
    lh.set_properties("gold", "t", {"delta.enableDeletionVectors": "true"})  # neither a change nor a rewrite
    lh.delta("gold", "t").delete("k1 = 'a'")
    assert lh.compact("gold", "t", 2)
    assert lh.delta("gold", "t").history(1).first().operation == "OPTIMIZE"
    assert not lh.compact("gold", "t", 2) and not lh.compact("gold", "t", 0)
    assert [r.k1 for r in lh.read("gold", "t").collect()] == ["b"]


def test_a_change_feed_not_recorded_for_part_of_a_range_is_reported_and_its_readers_recover(
        spark, settings, fresh_dir, caplog):
    from cdp_lib.identity.builder import _change_kind
    from cdp_lib.silver.incremental import read_bronze_since

    lh = lakehouse_at(spark, settings, fresh_dir)
    path = lh.path("bronze", "t")

    def append(k1):
        spark.createDataFrame([(k1, 1, "x", 1)], SCHEMA).write.format("delta").mode("append").save(path)

    def cdf(on):
        spark.sql(f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES (delta.enableChangeDataFeed = {str(on).lower()})")

    spark.createDataFrame([("a", 1, "x", 1)], SCHEMA).write.format("delta") \
        .option("delta.enableChangeDataFeed", "true").save(path)  # v0
    append("b")  # v1
    cdf(False)  # v2
    append("c")  # v3: no change data recorded
    cdf(True)  # v4
    append("d")  # v5
    assert [r.k1 for r in lh.changes("bronze", "t", 0, 1).collect()] == ["b"]
    assert lh.changes("bronze", "t", 1, 1) is None
    assert [r.k1 for r in lh.changes("bronze", "t", 4, 5).collect()] == ["d"]
    with pytest.raises(ChangeFeedUnavailable, match=r"^bronze\.t versions 2\.\.5 \("):
        lh.changes("bronze", "t", 1, 5)  # found when asked, not when the rows are read
    with caplog.at_level("WARNING"):
        # silver reads the new bronze rows by diffing snapshots; identity rebuilds the input
        assert sorted(r.k1 for r in read_bronze_since(lh, "t", 1, 5).collect()) == ["c", "d"]
        assert _change_kind(lh, "bronze.t", 1, 5, []) == ("rebuild", None)
    assert "silver: no change feed: bronze.t versions 2..5" in caplog.text
    assert "identity: no change feed: bronze.t versions 2..5" in caplog.text


def test_versions_older_than_the_file_retention_are_refused_before_a_row_is_read_and_silver_rereads_bronze(
        spark, settings, fresh_dir, caplog):
    from cdp_lib.maintenance import maintain_lakehouse
    from cdp_lib.silver.incremental import read_bronze_since

    lh = lakehouse_at(spark, settings, fresh_dir)  # the default retention: a week
    path = lh.path("silver", "t")
    spark.createDataFrame([("a", 1, "x", 1)], SCHEMA).write.format("delta") \
        .option("delta.enableChangeDataFeed", "true").save(path)  # v0
    spark.createDataFrame([("b", 1, "x", 1)], SCHEMA).write.format("delta").mode("append").save(path)  # v1
    spark.createDataFrame([("c", 1, "x", 1)], SCHEMA).write.format("delta").mode("overwrite").save(path)  # v2
    bronze = lh.path("bronze", "t")  # append-only, as bronze is
    for i, k in enumerate("pqr"):
        writer = spark.createDataFrame([(k, 1, "x", 1)], SCHEMA).write.format("delta").mode("append")
        (writer.option("delta.enableChangeDataFeed", "true") if i == 0 else writer).save(bronze)  # v0..v2
    # within the retention: the files of v1 (its insert, then v2's deletes) are all there
    feed = sorted((r.k1, r._change_type) for r in lh.changes("silver", "t", 0, 2).collect())
    assert feed == [("a", "delete"), ("b", "delete"), ("b", "insert"), ("c", "insert")]
    # cdp maintain with a 0-hour retention: VACUUM removes the files v2 stopped using, v1's among them
    lh0 = Lakehouse(spark, lh.settings.model_copy(
        update={"lakehouse": lh.settings.lakehouse.model_copy(update={"retention_hours": 0})}))
    summary = maintain_lakehouse(lh0, layers=("bronze", "silver"))
    assert summary["failed"] == {} and summary["tables"] == 2 and summary["files_removed"] >= 2
    assert lh0.properties("silver", "t")["delta.deletedFileRetentionDuration"] == "interval 0 hours"
    # Delta now refuses those versions when the read is planned, and the lakehouse says so before a row is read
    with pytest.raises(ChangeFeedUnavailable, match=r"^silver\.t versions 1\.\.2 \(AnalysisException: "
                                                     r"DELTA_UNSUPPORTED_TIME_TRAVEL_BEYOND_DELETED_FILE_RETENTION"):
        lh0.changes("silver", "t", 0, 2)
    with pytest.raises(VersionUnavailable, match=r"^silver\.t version 2 \(AnalysisException: DELTA_UNSUPPORTED"):
        lh0.snapshot("silver", "t", 2)
    latest = lh0.version("silver", "t")
    assert [r.k1 for r in lh0.snapshot("silver", "t", latest).collect()] == ["c"]  # the latest always reads
    # silver, whose watermark is older than the retention, reads every bronze row again (its merges keep
    # what it holds), where it would have diffed the two snapshots
    with caplog.at_level("WARNING"):
        rows = read_bronze_since(lh0, "t", 0, lh0.version("bronze", "t"))
    assert sorted(r.k1 for r in rows.collect()) == ["p", "q", "r"]
    assert "silver: bronze.t version 0 (AnalysisException: DELTA_UNSUPPORTED" in caplog.text
    assert "every row of bronze.t is read again" in caplog.text
