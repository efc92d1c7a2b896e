"""``ops.bronze_file_log``: which files (or JDBC windows) each bronze batch took, kept in Delta.

One row per file per batch state. A batch is first *planned* (its files, sizes and content
hashes, or its JDBC watermark window, appended in one commit), then its data is written, then
it is *committed* (the same rows again with status ``committed`` and per-file row counts).
A planned batch without a committed twin is an interrupted run: the next run replays exactly
that plan (see :mod:`cdp_lib.bronze.ingest` for why that is exactly-once).
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from urllib.parse import unquote, urlparse

from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

__all__ = [
    "FILE_LOG_SCHEMA",
    "LoggedFile",
    "Batch",
    "read_log",
    "pending_batches",
    "list_files",
    "hash_files",
    "spark_path",
    "plan_file_batch",
    "write_log",
]

FILE_LOG_SCHEMA = T.StructType(
    [
        T.StructField("source", T.StringType(), False),
        T.StructField("batch_seq", T.LongType(), False),
        T.StructField("batch_id", T.StringType(), False),
        T.StructField("status", T.StringType(), False),  # planned | committed
        T.StructField("file_path", T.StringType(), True),  # null for JDBC batches
        T.StructField("size", T.LongType(), True),
        T.StructField("modified_at", T.TimestampType(), True),
        T.StructField("content_hash", T.StringType(), True),  # sha256 hex of the bytes
        T.StructField("duplicate_of", T.StringType(), True),  # set when the bytes were ingested before
        T.StructField("watermark_from", T.StringType(), True),  # JDBC: exclusive lower bound
        T.StructField("watermark_to", T.StringType(), True),  # JDBC: inclusive upper bound
        T.StructField("rows", T.LongType(), True),
        T.StructField("quarantined", T.LongType(), True),
        T.StructField("logged_at", T.TimestampType(), False),
    ]
)

_REDELIVERED = re.compile(r"\.redelivered\.[^/]+$")


@dataclass(frozen=True)
class LoggedFile:
    path: str | None
    size: int | None = None
    modified_at: datetime | None = None
    content_hash: str | None = None
    duplicate_of: str | None = None
    rows: int | None = None
    quarantined: int | None = None


@dataclass
class Batch:
    source: str
    seq: int
    batch_id: str
    files: list[LoggedFile] = field(default_factory=list)
    watermark_from: str | None = None
    watermark_to: str | None = None
    resumed: bool = False

    @property
    def to_read(self) -> list[str]:
        return [f.path for f in self.files if f.duplicate_of is None and f.path]

    @property
    def duplicates(self) -> list[LoggedFile]:
        return [f for f in self.files if f.duplicate_of is not None]


def read_log(spark: SparkSession, path: str, source: str | None = None) -> list:
    """Every log row of ``source``, or of all sources (small: one row per file per state)."""
    from delta.tables import DeltaTable

    if not DeltaTable.isDeltaTable(spark, path):
        return []
    table = spark.read.format("delta").load(path)
    return (table.where(F.col("source") == source) if source is not None else table).collect()


def pending_batches(rows: list, source: str) -> list[Batch]:
    """The planned batches that never committed (interrupted runs), oldest first.

    A run commits its batches together at its end, so a run killed after replaying one batch and
    planning the next leaves two."""
    committed = {r.batch_seq for r in rows if r.status == "committed"}
    planned = sorted({r.batch_seq for r in rows if r.status == "planned"} - committed)
    out = []
    for seq in planned:
        plan = [r for r in rows if r.status == "planned" and r.batch_seq == seq]
        by_path = {r.file_path: r for r in plan if r.file_path is not None}  # a repeated plan row counts once
        files = [
            LoggedFile(r.file_path, r.size, r.modified_at, r.content_hash, r.duplicate_of)
            for _, r in sorted(by_path.items())
        ]
        out.append(Batch(source, seq, plan[0].batch_id, files, plan[0].watermark_from, plan[0].watermark_to,
                         resumed=True))
    return out


def list_files(spark: SparkSession, glob: str) -> list[LoggedFile]:
    """Files matching a Hadoop glob on any file system (local, s3a, hdfs); hidden files skipped."""
    jvm = spark._jvm
    pattern = jvm.org.apache.hadoop.fs.Path(glob)
    fs = pattern.getFileSystem(spark._jsc.hadoopConfiguration())
    statuses = fs.globStatus(pattern) or []
    out = []
    for status in statuses:
        name = status.getPath().getName()
        if status.isFile() and not name.startswith(("_", ".")):
            modified = datetime.fromtimestamp(status.getModificationTime() / 1000, timezone.utc).replace(tzinfo=None)
            out.append(LoggedFile(status.getPath().toString(), status.getLen(), modified))
    return sorted(out, key=lambda f: f.path)


def spark_path(spark: SparkSession, path: str) -> str:
    """How Spark's file readers name ``path`` in ``_metadata.file_path``: its URI, so ``a b``
    reads as ``a%20b`` (the file log keeps Hadoop's own string)."""
    return spark._jvm.org.apache.hadoop.fs.Path(path).toUri().toString()


def _local_path(uri: str) -> str | None:
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return unquote(parsed.path)
    return None


def _sha256(local: str) -> str:
    digest = hashlib.sha256()
    with open(local, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)  # releases the GIL: files hash in parallel threads
    return digest.hexdigest()


def hash_files(spark: SparkSession, paths: Iterable[str]) -> dict[str, str]:
    """SHA-256 of each file's bytes: streamed in Python threads for local files (one per core),
    one Spark job otherwise."""
    paths = list(paths)
    local = {p: _local_path(p) for p in paths}
    mine = [p for p in paths if local[p] is not None]
    remote = [p for p in paths if local[p] is None]
    out: dict[str, str] = {}
    if mine:
        with ThreadPoolExecutor(max_workers=min(len(mine), os.cpu_count() or 1)) as pool:
            out.update(zip(mine, pool.map(_sha256, [local[p] for p in mine]), strict=True))
    if remote:
        rows = (
            spark.read.format("binaryFile").load(remote)
            .select("path", F.sha2("content", 256).alias("h")).collect()
        )
        by_path = {r.path: r.h for r in rows}
        out.update({p: by_path[p] for p in remote})
    return out


def plan_file_batch(spark: SparkSession, rows: list, source: str, glob: str, run_id: str) -> Batch | None:
    """The next batch of ``source``: files under ``glob`` whose path was never logged.

    A file whose bytes equal an already logged (or earlier in this batch) file is kept in the
    plan as a duplicate and not read: a re-delivery under a new name is ingested once.
    """
    known_paths = {r.file_path for r in rows}
    new = [f for f in list_files(spark, glob) if f.path not in known_paths]
    if not new:
        return None
    hashes = hash_files(spark, [f.path for f in new])
    seen = {r.content_hash: r.file_path for r in rows if r.content_hash and r.duplicate_of is None}
    planned = []
    # Originals before re-deliveries, so a batch holding both reads the original.
    for f in sorted(new, key=lambda f: (bool(_REDELIVERED.search(f.path)), f.path)):
        digest = hashes[f.path]
        planned.append(replace(f, content_hash=digest, duplicate_of=seen.get(digest)))
        seen.setdefault(digest, f.path)
    seq = max((r.batch_seq for r in rows), default=-1) + 1
    return Batch(source, seq, f"{run_id}:{source}:{seq}", sorted(planned, key=lambda f: f.path))


def write_log(spark: SparkSession, path: str, batches: list[Batch], status: str, run_id: str) -> None:
    """Append the rows of ``batches`` (any sources) with ``status`` in one commit.

    The commit carries ``txnAppId=bronze_file_log:<run id>:<status>`` and a microsecond clock as
    ``txnVersion``: a label of the run that wrote it (a batch is planned once and committed once
    per run by construction; :func:`pending_batches` also ignores a repeated plan row)."""
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    data = [
        (batch.source, batch.seq, batch.batch_id, status, f.path, f.size, f.modified_at, f.content_hash,
         f.duplicate_of, batch.watermark_from, batch.watermark_to,
         f.rows if status == "committed" else None, f.quarantined if status == "committed" else None, now)
        for batch in batches
        for f in (batch.files or [LoggedFile(None)])
    ]
    (
        spark.createDataFrame(data, FILE_LOG_SCHEMA).coalesce(1).write.format("delta").mode("append")
        .option("txnAppId", f"bronze_file_log:{run_id}:{status}")
        .option("txnVersion", time.time_ns() // 1000)
        .save(path)
    )
