"""The streaming inputs: new files in the events landing folders, and (optionally) Kafka topics.

Files: the stream only *discovers* them (Spark's file source: checkpointed, ``maxFilesPerTrigger``)
as (source, file_path) rows; each micro-batch then parses its files with the bronze batch reader
(:func:`cdp_lib.bronze.readers.read_files`), so contract, rescue and quarantine are exactly the
batch path's. The price is reading each new file twice (once to list it, once to parse it).

Kafka (spark-sql-kafka, pinned in ``cdp_lib/jvm/pom.xml``): one record value is one JSON event,
as (source, value, record) rows; each micro-batch parses the values with the same JSON parser
(:func:`cdp_lib.bronze.readers.parse_json_lines`). ``record`` is ``kafka://<topic>/<partition>/
<offset>``, which becomes the bronze ``_source_file``: a record's address plays the part of the
file path, so bronze keeps one schema whichever input a row came from, and silver's lineage
columns carry it unchanged.
"""

from __future__ import annotations

import json
import re

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from cdp_lib.bronze.sources import Source, source_location
from cdp_lib.streaming.config import KafkaInput

__all__ = ["file_stream", "kafka_stream", "checkpoint_query_id"]


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


def kafka_stream(spark: SparkSession, kafka: KafkaInput) -> DataFrame:
    """One streaming frame over every configured topic: columns ``source``, ``value``, ``record``.

    ``value`` is the record's bytes as UTF-8 text; a null value (a tombstone) is the empty string,
    which the parser quarantines as not a JSON object, so every record read lands somewhere.
    ``failOnDataLoss`` stays Spark's default (true): offsets deleted by retention before the stream
    read them stop the query instead of silently skipping events.

    The topics are subscribed as an exact-match pattern, not a list: with ``subscribe`` Spark
    describes every listed topic when the query starts and fails (UnknownTopicOrPartitionException)
    if one does not exist yet, e.g. an app topic that nobody has written to. A pattern matches the
    topics that exist, and picks up one created later from its earliest offset, so nothing is lost.
    """
    pattern = "^(" + "|".join(re.escape(t) for t in sorted(kafka.topics.values())) + ")$"
    reader = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", kafka.bootstrap_servers)
        .option("subscribePattern", pattern)
        .option("startingOffsets", kafka.starting_offsets)
    )
    if kafka.max_offsets_per_trigger is not None:
        reader = reader.option("maxOffsetsPerTrigger", kafka.max_offsets_per_trigger)
    for option, value in kafka.client_options().items():
        reader = reader.option(option, value)
    source_of = F.create_map(*[F.lit(x) for source, topic in sorted(kafka.topics.items()) for x in (topic, source)])
    return reader.load().select(
        source_of[F.col("topic")].alias("source"),
        F.coalesce(F.col("value").cast("string"), F.lit("")).alias("value"),
        F.format_string("kafka://%s/%d/%d", "topic", "partition", "offset").alias("record"),
    )


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
