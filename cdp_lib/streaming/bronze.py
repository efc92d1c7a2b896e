"""One micro-batch of event files into ``bronze.<source>`` / ``bronze.<source>_quarantine``.

Same parsing, contract and quarantine as ``cdp ingest`` (the bronze reader is reused, not
copied); each Delta write carries ``txnAppId=stream:<query id>:<source>`` and
``txnVersion=<batch id>``, so a micro-batch replayed after a crash is skipped by Delta.
"""

from __future__ import annotations

from datetime import datetime, timezone

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from cdp_lib.bronze.ingest import quarantine_table
from cdp_lib.bronze.readers import read_files
from cdp_lib.bronze.sources import Source
from cdp_lib.lakehouse import Lakehouse

__all__ = ["write_bronze_batch"]


def _append(df: DataFrame, path: str, app_id: str, version: int) -> None:
    (
        df.write.format("delta").mode("append")
        .option("txnAppId", app_id).option("txnVersion", version)
        .option("mergeSchema", True)
        .save(path)
    )


def write_bronze_batch(spark: SparkSession, lakehouse: Lakehouse, source: Source, schema: T.StructType,
                       files: list[str], batch_id: int, query_id: str) -> tuple[DataFrame, DataFrame, int, int]:
    """Parse ``files`` and append them to bronze.

    Returns (parsed frame, persisted: the caller unpersists it; its good rows as written to bronze;
    rows; quarantined rows).
    """
    lineage = source.lineage_column
    parsed = read_files(spark, source, schema, files).select(
        "*",
        F.lit(datetime.now(timezone.utc)).cast("timestamp").alias("_ingested_at"),
        F.lit(f"stream:{query_id}:{batch_id}").alias("_batch_id"),
        F.lit(source.name).alias("_source"),
    ).persist(StorageLevel.MEMORY_AND_DISK)
    counts = parsed.agg(F.count(F.lit(1)).alias("n"), F.count("_reason").alias("bad")).first()
    good = parsed.where(F.col("_reason").isNull()).select(
        *schema.fieldNames(), "_ingested_at", "_batch_id", "_source", lineage, "_rescued")
    bad = parsed.where(F.col("_reason").isNotNull()).select(
        F.col("_raw").alias("raw"), F.col("_reason").alias("reason"), lineage, "_batch_id", "_source", "_ingested_at")
    app_id = f"stream:{query_id}:{source.name}"
    _append(good, lakehouse.path("bronze", source.name), app_id, batch_id)
    if counts["bad"] or not lakehouse.exists("bronze", quarantine_table(source.name)):
        _append(bad, lakehouse.path("bronze", quarantine_table(source.name)), app_id, batch_id)
    return parsed, good, counts["n"] - counts["bad"], counts["bad"]
