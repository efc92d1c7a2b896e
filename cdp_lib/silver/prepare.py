"""Reshaping steps a source needs before its columns map onto an entity (``prepare:`` in YAML)."""

from __future__ import annotations

from collections.abc import Callable

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

__all__ = ["PREPARE", "explode_order_items", "pos_order_headers"]

_LINEAGE = ("_ingested_at", "_batch_id", "_source", "_source_file", "_rescued")


def explode_order_items(df: DataFrame) -> DataFrame:
    """One row per element of ``items`` with ``line_no`` (1-based position) and ``item`` (the struct)."""
    return df.select("*", F.posexplode("items").alias("__pos", "item")).withColumn(
        "line_no", (F.col("__pos") + 1).cast("int")
    ).drop("__pos")


def pos_order_headers(df: DataFrame) -> DataFrame:
    """POS order lines -> one header per ``order_id`` (of this batch): totals and line counts.

    Attributes that repeat on every line take their max (deterministic); ``total_amount``
    is the sum of ``line_amount``. Lines of one order arrive in one store file, so a batch
    holds whole orders.
    """
    repeated = [c for c in ("store_id", "loyalty_id", "email", "order_ts", "currency") if c in df.columns]
    lineage = [c for c in _LINEAGE if c in df.columns]
    return df.groupBy("order_id").agg(
        *[F.max(c).alias(c) for c in repeated],
        F.sum(F.col("line_amount").cast("string").try_cast("decimal(12,2)")).alias("total_amount"),
        F.count(F.lit(1)).cast("int").alias("line_count"),
        *[F.max(c).alias(c) for c in lineage],
    )


PREPARE: dict[str, Callable[[DataFrame], DataFrame]] = {
    "explode_order_items": explode_order_items,
    "pos_order_headers": pos_order_headers,
}
