"""Writes generated frames as the named files of the landing contract (docs/landing.md).

Spark writes ``part-*`` files under a temporary folder (one partition folder per date,
and per store for POS); the driver then renames those few files into place. The driver
only ever handles file names, never rows.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from cdp_lib.session import temporary_conf

__all__ = ["FileSpec", "HadoopFiles", "write_files", "redeliver"]

log = logging.getLogger(__name__)

Naming = Callable[[dict[str, str], int], str]


@dataclass(frozen=True)
class FileSpec:
    """How one source is laid out: format, file name per (partition values, file index), sort order."""

    source: str
    fmt: str                      # csv | jsonl | parquet
    naming: Naming
    partition_by: tuple[str, ...] = ("_date",)
    sort_by: tuple[str, ...] = ()
    # True: one file per partition folder (a shuffle by the partition columns, then a sort so
    # the file content is stable). False: one file per generating task, no shuffle; the
    # generating partitions are fixed ranges of person ids, so content is stable anyway.
    single_file: bool = False


class HadoopFiles:
    """Rename/copy/delete through the Hadoop FileSystem of a path (local, s3a, hdfs).

    On the local file system the raw (checksum-free) file system is used, so no
    ``.crc`` side files end up in the landing zone.
    """

    def __init__(self, spark: SparkSession, root: str):
        jvm = spark._jvm
        self._jvm = jvm
        self._conf = spark._jsc.hadoopConfiguration()
        self._Path = jvm.org.apache.hadoop.fs.Path
        fs = self._Path(root).getFileSystem(self._conf)
        checksummed = jvm.java.lang.Class.forName("org.apache.hadoop.fs.ChecksumFileSystem")
        self.fs = fs.getRawFileSystem() if checksummed.isInstance(fs) else fs

    def path(self, p: str):
        return self._Path(p)

    def exists(self, p: str) -> bool:
        return bool(self.fs.exists(self._Path(p)))

    def delete(self, p: str) -> None:
        if self.exists(p):
            self.fs.delete(self._Path(p), True)

    def mkdirs(self, p: str) -> None:
        self.fs.mkdirs(self._Path(p))

    def is_empty_or_missing(self, p: str) -> bool:
        return not self.exists(p) or len(self.fs.listStatus(self._Path(p))) == 0

    def move(self, src: str, dst: str) -> None:
        target = self._Path(dst)
        self.fs.mkdirs(target.getParent())
        if not self.fs.rename(self._Path(src), target):
            raise OSError(f"could not move a generated file into {dst}")

    def copy(self, src: str, dst: str) -> None:
        self._jvm.org.apache.hadoop.fs.FileUtil.copy(self.fs, self._Path(src), self.fs, self._Path(dst), False,
                                                     self._conf)

    def part_files(self, root: str) -> list[tuple[dict[str, str], list[str]]]:
        """(partition values, sorted part-file paths) of every leaf folder under ``root``."""
        out: list[tuple[dict[str, str], list[str]]] = []

        def walk(p, values: dict[str, str]) -> None:
            parts = []
            for st in self.fs.listStatus(p):
                name = st.getPath().getName()
                if st.isDirectory() and "=" in name:
                    k, v = name.split("=", 1)
                    walk(st.getPath(), {**values, k: self._jvm.java.net.URLDecoder.decode(v, "UTF-8")})
                elif name.startswith("part-"):
                    parts.append(st.getPath().toString())
            if parts:
                out.append((values, sorted(parts)))

        walk(self._Path(root), {})
        return out


# A task writes its rows of every output folder through concurrently open writers instead
# of first sorting its rows by folder (a spilling sort of the whole task): with only a few
# folders per source (dates x stores/channels) that sort is pure overhead. Above this many
# folders in one task Spark falls back to the sort.
_CONCURRENT_WRITERS = "64"


def write_files(df: DataFrame, spec: FileSpec, tmp: str, out: str, files: HadoopFiles, partitions: int,
                side: dict[str, Column] | None = None, side_dir: str | None = None) -> list[str]:
    """Write ``df`` (landing columns + partition columns; other ``_`` columns are dropped) as named files.

    ``side`` (single-column text sources only): more text lines per row (a null line is
    skipped), written in the same pass into ``side_dir/<name>`` (part files under partition
    folders) instead of the landing zone: the ground truth of the rows, without generating
    them twice.

    Returns the landing paths written, relative to ``out``.
    """
    started = time.time()
    keys = list(spec.partition_by)
    if spec.single_file:
        df = df.repartition(max(1, partitions), *keys) if keys else df.repartition(1)
        order = keys + list(spec.sort_by)
        df = df.sortWithinPartitions(*order) if order else df
    data = [c for c in df.columns if not c.startswith("_") and c not in keys]
    landing = tmp
    if side:
        if spec.fmt != "jsonl" or len(data) != 1 or spec.single_file:
            raise ValueError(f"side lines need a single-column text source, not {spec.source}")
        value = data[0]
        # The side lines are computed by a projection of their own: the explode below then only
        # moves columns (a generator's expression is evaluated row by row, not compiled, when
        # its stage falls back from whole-stage code).
        df = df.select(value, *keys, *[line.alias(f"_side_{kind}") for kind, line in side.items()])
        lines = [("landing", value)] + [(kind, f"_side_{kind}") for kind in side]
        df = df.select(F.array(*[
            F.struct(F.lit(kind).alias("_out"), F.col(c).alias(value), *[F.col(k) for k in keys]) for kind, c in lines
        ]).alias("_lines"))
        df = df.select(F.explode("_lines").alias("_r")).select("_r.*").where(F.col(value).isNotNull())
        keys = ["_out", *keys]
        landing = f"{tmp.rstrip('/')}/_out=landing"
    df = df.select(*data, *keys)
    w = df.write.mode("overwrite").partitionBy(*keys)
    with temporary_conf(df.sparkSession, {"spark.sql.maxConcurrentOutputFileWriters": _CONCURRENT_WRITERS}):
        if spec.fmt == "csv":
            w.options(header=True, quote='"', escape='"', nullValue="", encoding="UTF-8").csv(tmp)
        elif spec.fmt == "jsonl":
            w.text(tmp)
        elif spec.fmt == "parquet":
            w.parquet(tmp)
        else:
            raise ValueError(f"unknown landing format {spec.fmt!r}")
    written = []
    for values, parts in files.part_files(landing):
        for i, part in enumerate(parts):
            rel = spec.naming(values, i)
            files.move(part, f"{out.rstrip('/')}/{rel}")
            written.append(rel)
    for kind in side or {}:
        target = f"{side_dir.rstrip('/')}/{kind}"
        files.delete(target)
        if files.exists(f"{tmp.rstrip('/')}/_out={kind}"):
            files.move(f"{tmp.rstrip('/')}/_out={kind}", target)
        else:
            files.mkdirs(target)
    files.delete(tmp)
    log.info("generate: %s -> %d files in %.1fs", spec.source, len(written), time.time() - started)
    return sorted(written)


def redeliver(paths: list[str], rate: float, seed: int, out: str, files: HadoopFiles) -> list[str]:
    """Copy a deterministic ``rate`` share of ``paths`` byte for byte to ``*.redelivered.<ext>``.

    At least one file is re-delivered whenever ``rate`` > 0, so small runs exercise it too.
    """
    if rate <= 0 or not paths:
        return []

    def score(p: str) -> float:
        return int(hashlib.sha256(f"{seed}:{p}".encode()).hexdigest()[:12], 16) / float(16**12)

    chosen = [p for p in paths if score(p) < rate] or [min(paths, key=score)]
    copies = []
    for p in sorted(chosen):
        stem, ext = p.rsplit(".", 1)
        dst = f"{stem}.redelivered.{ext}"
        files.copy(f"{out.rstrip('/')}/{p}", f"{out.rstrip('/')}/{dst}")
        copies.append(dst)
    return copies
