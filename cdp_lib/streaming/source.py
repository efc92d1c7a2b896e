"""The streaming input: new files in the events landing folders, as (source, file_path) rows.

The stream only *discovers* files (Spark's file source: checkpointed, ``maxFilesPerTrigger``);
each micro-batch then parses its files with the bronze batch reader
(:func:`cdp_lib.bronze.readers.read_files`), so contract, rescue and quarantine are exactly the
batch path's. The price is reading each new file twice (once to list it, once to parse it).
"""

from __future__ import annotations

import json

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from cdp_lib.bronze.sources import Source, source_location

__all__ = ["file_stream", "checkpoint_query_id"]


def file_stream(spark: SparkSession, sources: list[Source], landing: str, max_files_per_trigger: int) -> DataFrame:
    """One streaming frame over every source's landing glob: columns ``source``, ``file_path``."""
    frames = [
        spark.readStream.format("text")
        .option("maxFilesPerTrigger", max_files_per_trigger)
        .load(source_location(s, landing))
        .select(F.lit(s.name).alias("source"), F.col("_metadata.file_path").alias("file_path"))
        for s in sources
    ]
    out = frames[0]
    for frame in frames[1:]:
        out = out.unionByName(frame)
    return out


def checkpoint_query_id(spark: SparkSession, checkpoint: str) -> str:
    """The query id Spark keeps in ``<checkpoint>/metadata`` (stable across restarts of one checkpoint).

    It names the Delta ``txnAppId`` of the stream's writes: a new checkpoint gets a new id, so its
    batch ids (which restart at 0) are never mistaken for ones already committed.
    """
    jvm = spark._jvm
    path = jvm.org.apache.hadoop.fs.Path(checkpoint.rstrip("/") + "/metadata")
    fs = path.getFileSystem(spark._jsc.hadoopConfiguration())
    reader = jvm.java.io.BufferedReader(jvm.java.io.InputStreamReader(fs.open(path), "UTF-8"))
    try:
        return json.loads(reader.readLine())["id"]
    finally:
        reader.close()
