"""De-duplication: exact duplicates, one version per business key, and the Delta MERGE.

Versions of one key are totally ordered by ``(order_by, _row_hash)``, both intrinsic to
the row: the winner is the maximum, so it does not depend on the order batches arrive
in, and an incremental history gives exactly the full rebuild (a maximum is associative
and idempotent). ``_ingested_at`` is *not* an ordering tie-break for ``latest`` because a
re-delivered copy of an old version would then beat a newer one with the same
``updated_at``. Copies with the same ``_row_hash`` are exact duplicates: the earliest
ingested copy is kept, so its lineage (``_batch_id``) is what silver points to.

``keep: first`` (events by ``message_id``): the earliest ingested copy wins, then the
smallest ``_row_hash``; the MERGE only inserts absent keys.
"""

from __future__ import annotations

from delta.tables import DeltaTable
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

__all__ = [
    "with_row_hash",
    "pick_one",
    "newer_condition",
    "merge_latest",
    "merge_first",
    "merged_rows",
]


def with_row_hash(df: DataFrame, data_columns: list[str]) -> DataFrame:
    """Add ``_row_hash``: SHA-256 of the data columns (lineage columns excluded)."""
    return df.withColumn("_row_hash", F.sha2(F.to_json(F.struct(*data_columns)), 256))


def pick_one(df: DataFrame, key: list[str], keep: str, order_by: str | None = None) -> DataFrame:
    """One row per key, in one window (one shuffle and sort of the batch).

    The winning version: ``latest``, greatest ``order_by`` (nulls lose), then greatest ``_row_hash``;
    ``first``, earliest ``_ingested_at``, then smallest ``_row_hash``. Of that version's exact
    copies (same ``_row_hash``), the earliest ingested (``_ingested_at``, ``_batch_id``,
    ``_record_key``). Copies share every data column (``order_by`` is one), so this is what dropping
    exact duplicates first and then picking a version gives. One exception: ``_row_hash`` sees
    times to the millisecond (``to_json``), so two versions whose ``order_by`` differs only in
    microseconds count as copies; the later one wins here, as it does in :func:`merge_latest`.
    """
    copy = [F.col("_ingested_at").asc_nulls_last(), F.col("_batch_id").asc_nulls_last(), F.col("_record_key").asc()]
    if keep == "latest":
        order = [F.col(order_by).desc_nulls_last(), F.col("_row_hash").desc(), *copy]
    else:
        order = [F.col("_ingested_at").asc_nulls_last(), F.col("_row_hash").asc(), *copy[1:]]
    w = Window.partitionBy(*key).orderBy(*order)
    return df.withColumn("__n", F.row_number().over(w)).where("__n = 1").drop("__n")


def newer_condition(order_by: str, s: str = "s", t: str = "t") -> Column:
    """Source row strictly after the target row in ``(order_by, _row_hash)`` order (null order_by is oldest)."""
    so, to = F.col(f"{s}.{order_by}"), F.col(f"{t}.{order_by}")
    sh, th = F.col(f"{s}._row_hash"), F.col(f"{t}._row_hash")
    return (
        (so > to)
        | (to.isNull() & so.isNotNull())
        | (so.eqNullSafe(to) & (sh > th))
    )


def _key_condition(key: list[str]) -> Column:
    cond = None
    for k in key:
        c = F.col(f"t.{k}").eqNullSafe(F.col(f"s.{k}"))
        cond = c if cond is None else cond & c
    return cond


def merged_rows(result: DataFrame) -> int:
    """Rows a MERGE inserted or updated, from the metrics row Delta's ``execute()`` returns (a local
    row: no job, no history read)."""
    row = result.first()
    return int(row["num_inserted_rows"]) + int(row["num_updated_rows"])


def merge_latest(target: DeltaTable, updates: DataFrame, key: list[str], order_by: str) -> int:
    """MERGE one-row-per-key ``updates``: insert new keys, replace a row only by a newer, different one.
    Returns the rows inserted or updated."""
    return merged_rows(
        target.alias("t")
        .merge(updates.alias("s"), _key_condition(key))
        .withSchemaEvolution()
        .whenMatchedUpdateAll(condition=newer_condition(order_by))
        .whenNotMatchedInsertAll()
        .execute()
    )


def merge_first(target: DeltaTable, updates: DataFrame, key: list[str]) -> int:
    """MERGE one-row-per-key ``updates``: insert keys not yet present, never update. Returns the rows
    inserted."""
    return merged_rows(
        target.alias("t")
        .merge(updates.alias("s"), _key_condition(key))
        .withSchemaEvolution()
        .whenNotMatchedInsertAll()
        .execute()
    )
