"""One micro-batch of events into ``bronze.<source>`` / ``bronze.<source>_quarantine``.

Same parsing, contract and quarantine as ``cdp ingest``: the caller hands over a *parsed* frame
from the bronze reader (files: ``read_files``; Kafka records: ``parse_json_lines``), never a copy
of it. Each Delta write carries ``txnAppId=stream:<query id>:<source>`` and
``txnVersion=<batch id>``, so a micro-batch replayed after a crash is skipped by Delta. The file
and Kafka queries have separate checkpoints, hence separate query ids and txnAppIds: their batch
ids (each counting from 0) never collide on one bronze table.
"""

from __future__ import annotations

from datetime import datetime, timezone

from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from cdp_lib.bronze.ingest import quarantine_table
from cdp_lib.bronze.sources import Source
from cdp_lib.lakehouse import Lakehouse

__all__ = ["write_bronze_batch"]


def write_bronze_batch(lakehouse: Lakehouse, source: Source, schema: T.StructType, parsed: DataFrame,
                       batch_id: int, query_id: str) -> tuple[DataFrame, DataFrame, int, int]:
    """Append one batch's ``parsed`` frame (the bronze reader's output) to bronze and quarantine.

    Returns (parsed frame with lineage, persisted: the caller unpersists it; its good rows as
    written to bronze; rows; quarantined rows). Rows + quarantined = the records parsed.
    """
    lineage = source.lineage_column
    parsed = parsed.select(
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
    lakehouse.append_once(good, "bronze", source.name, app_id, batch_id)
    if counts["bad"] or not lakehouse.exists("bronze", quarantine_table(source.name)):
        lakehouse.append_once(bad, "bronze", quarantine_table(source.name), app_id, batch_id)
    return parsed, good, counts["n"] - counts["bad"], counts["bad"]
