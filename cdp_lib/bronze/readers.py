"""Read one batch of a source into a *parsed* frame, one read per batch (never a job per file).

The parsed frame has the contract columns (typed), ``_rescued`` (JSON of fields not in the
contract, or null), the lineage column (``_source_file`` / ``_source_query``), ``_reason``
(null for a good row, else why it goes to quarantine) and ``_raw`` (the raw line or row, set
on quarantined rows only). Splitting it into bronze and quarantine is the caller's job, so
every input row lands in exactly one of them.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from cdp_lib.bronze.filelog import spark_path
from cdp_lib.bronze.sources import Source
from cdp_lib.errors import SchemaContractError

__all__ = ["JsonScan", "broken_line", "read_files", "read_json_fast", "read_jdbc", "parse_json_lines", "json_lines",
           "conform", "json_reader_allowed", "reparse_json_lines", "scan_json_files"]

_INTERNAL = "_cdp_"  # prefix of helper columns that never reach bronze
_CORRUPT = "_cdp_corrupt"
_FILE = "_cdp_file"
_LINEAGE = "_cdp_lineage"
# Reader options that change how a JSON-lines file splits into lines or decodes its bytes.
_LINE_OPTIONS = {"encoding", "charset", "multiline", "multiLine", "lineSep", "linesep"}


def _c(name: str) -> Column:
    return F.col("`" + name.replace("`", "``") + "`")


def _opts(source: Source) -> dict[str, str]:
    return {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in source.options.items()}


def conform(df: DataFrame, source: Source, schema: T.StructType, lineage: Column,
            bad: Column | None = None, raw: Column | None = None, rescued: Column | None = None) -> DataFrame:
    """Project ``df`` (any columns, any types) onto the contract of ``source``.

    A contract column of another type is cast with ``try_cast``; a non-null value that does not
    cast is a contract violation, as is a null in a ``nullable: false`` column. Columns outside
    the contract are packed into ``_rescued`` (schema drift is kept, never dropped).
    ``bad`` is an earlier reason (a parse failure); ``raw`` the raw text (default: the row as JSON);
    ``rescued`` replaces the packing of extra columns when the reader rescues drift itself.
    """
    present = {f.name: f.dataType for f in df.schema.fields if not f.name.startswith(_INTERNAL)}
    required = {c.name for c in source.contract if not c.nullable}
    typed, reasons = [], [] if bad is None else [bad]
    for fld in schema.fields:
        if fld.name not in present:
            value = F.lit(None).cast(fld.dataType)
        elif present[fld.name] == fld.dataType:
            value = _c(fld.name)
        else:
            value = _cast(_c(fld.name), present[fld.name], fld.dataType, source.time_zone)
            reasons.append(F.when(_c(fld.name).isNotNull() & value.isNull(),
                                  F.lit(f"contract: {fld.name} is not {fld.dataType.simpleString()}")))
        if fld.name in required:
            reasons.append(F.when(value.isNull(), F.lit(f"contract: {fld.name} is required")))
        typed.append(value.alias(fld.name))
    extras = [n for n in present if n not in schema.fieldNames()]
    if rescued is not None:
        pass
    elif extras:
        packed = F.to_json(F.struct(*[_c(n) for n in extras]))
        rescued = F.when(packed != F.lit("{}"), packed)
    else:
        rescued = F.lit(None).cast("string")
    reason = F.coalesce(*reasons) if reasons else F.lit(None).cast("string")
    if raw is None:
        raw = F.to_json(F.struct(*[_c(n) for n in present]))
    return df.select(
        *typed,
        rescued.alias("_rescued"),
        lineage.alias(source.lineage_column),
        reason.alias("_reason"),
        F.when(reason.isNotNull(), raw).alias("_raw"),
    )


def _cast(value: Column, present: T.DataType, target: T.DataType, zone: str | None) -> Column:
    """``value`` as ``target`` (null when it does not cast). A timestamp written without an offset
    (text or ``timestamp_ntz``) is a wall-clock time in ``zone`` when the source declares one; by
    default it is read in the session's zone, UTC. (Spark's JSON readers apply the ``timeZone``
    option themselves; CSV columns arrive here as text.)"""
    if zone is not None and isinstance(target, T.TimestampType) and isinstance(
            present, T.StringType | T.TimestampNTZType):
        # Spark's own cast with the source's zone (cdp_lib/jvm/src/io/cdp/bronze/ZonedTimestamp.java).
        # A timestamp_ntz goes as its text, which no zone touches: one path for both, whatever the
        # session's zone (a cast of it to timestamp would read it in the session's).
        return F.call_function("cdp_to_timestamp", value.cast("string"), F.lit(zone))
    return value.try_cast(target)


def _csv_header(spark: SparkSession, path: str, sep: str, quote: str, encoding: str) -> tuple[str, ...]:
    """The header line of one file (a few bytes over the Hadoop FS: works on s3a/hdfs too)."""
    jvm = spark._jvm
    hpath = jvm.org.apache.hadoop.fs.Path(path)
    fs = hpath.getFileSystem(spark._jsc.hadoopConfiguration())
    reader = jvm.java.io.BufferedReader(jvm.java.io.InputStreamReader(fs.open(hpath), encoding))
    try:
        line = reader.readLine() or ""
    finally:
        reader.close()
    return tuple(next(csv.reader([line.lstrip("\ufeff")], delimiter=sep, quotechar=quote), []))


def _read_csv(spark: SparkSession, source: Source, schema: T.StructType, files: list[str]) -> DataFrame:
    opts = _opts(source)
    header = opts.pop("header", "true") == "true"
    sep = opts.get("sep", opts.get("delimiter", ","))
    groups: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for path in files:
        cols = (_csv_header(spark, path, sep, opts.get("quote", '"'), opts.get("encoding", "UTF-8"))
                if header else tuple(schema.fieldNames()))
        if len(set(cols)) != len(cols) or any(c.startswith(_INTERNAL) for c in cols):
            raise SchemaContractError(f"source {source.name}: a file's header repeats a column name")
        groups[cols].append(path)
    frames = []
    # One read per distinct header (normally one): columns named by the file, typed by the contract.
    for cols, paths in groups.items():
        read_schema = T.StructType([T.StructField(c, T.StringType()) for c in cols]
                                   + [T.StructField(_CORRUPT, T.StringType())])
        df = (
            spark.read.options(**opts).option("header", header).option("enforceSchema", True)
            .option("mode", "PERMISSIVE").option("columnNameOfCorruptRecord", _CORRUPT)
            .schema(read_schema).csv(paths)
            .select("*", F.col("_metadata.file_path").alias(_FILE))
        )
        bad = F.when(F.col(_CORRUPT).isNotNull(), F.lit("malformed csv line (field count or quoting)"))
        raw = F.coalesce(F.col(_CORRUPT), F.to_json(F.struct(*[_c(c) for c in cols])))
        frames.append(conform(df, source, schema, F.col(_FILE), bad, raw))
    out = frames[0]
    for frame in frames[1:]:
        out = out.unionByName(frame)
    return out


def parse_json_lines(records: DataFrame, source: Source, schema: T.StructType, text: Column,
                     lineage: Column) -> DataFrame:
    """JSON text, one object per row of ``records``, parsed with the contract into a parsed frame.

    The one JSON parser of bronze: JSON-lines files (a row per non-blank line) and the event
    stream's Kafka input (a row per record value) both go through it, so contract, rescue and
    quarantine cannot drift apart. The raw text is kept for quarantine, and top-level keys outside
    the contract are rescued (Spark's JSON reader would drop them). ``lineage`` (a column of
    ``records``) becomes the source's lineage column.
    """
    opts = _opts(source)
    opts.pop("encoding", None)  # how file bytes decode, not a parser option
    lines = records.select(text.alias("_cdp_line"), lineage.alias(_LINEAGE))
    parse_schema = T.StructType(schema.fields + [T.StructField(_CORRUPT, T.StringType())])
    parsed = F.from_json("_cdp_line", parse_schema, {**opts, "mode": "PERMISSIVE",
                                                     "columnNameOfCorruptRecord": _CORRUPT})
    keys = F.json_object_keys("_cdp_line")
    known = F.array(*[F.lit(n) for n in schema.fieldNames()])
    extra = F.array_except(keys, known)
    as_map = F.from_json("_cdp_line", T.MapType(T.StringType(), T.StringType()))
    rescued = F.when(F.size(extra) > 0, F.to_json(F.map_filter(as_map, lambda k, v: F.array_contains(extra, k))))
    df = lines.select(
        "_cdp_line", _LINEAGE, parsed.alias("_cdp_parsed"), keys.alias("_cdp_keys"), rescued.alias("_cdp_rescued")
    )
    bad = (
        F.when(F.col("_cdp_keys").isNull(), F.lit("malformed json (not a JSON object)"))
        .when(F.col("_cdp_parsed").getField(_CORRUPT).isNotNull(),
              F.lit("contract: a field does not match its declared type"))
    )
    flat = df.select(*[F.col("_cdp_parsed").getField(n).alias(n) for n in schema.fieldNames()],
                     "_cdp_line", _LINEAGE, "_cdp_rescued", bad.alias("_cdp_bad"))
    return conform(flat, source, schema, F.col(_LINEAGE), F.col("_cdp_bad"), F.col("_cdp_line"),
                   F.col("_cdp_rescued"))


def json_lines(spark: SparkSession, source: Source, files: list[str]) -> DataFrame:
    """The records of JSON-lines files as text (in the source's encoding): ``value`` (one per
    non-blank line) and the file's path in ``_cdp_file``."""
    encoding = _opts(source).get("encoding")
    text = spark.read.option("encoding", encoding) if encoding else spark.read
    return (
        text.text(files)
        .select("value", F.col("_metadata.file_path").alias(_FILE))
        .where(F.trim("value") != "")  # blank lines are not records
    )


def _read_json_lines(spark: SparkSession, source: Source, schema: T.StructType, files: list[str]) -> DataFrame:
    """JSON lines read as text, one record per non-blank line, parsed by :func:`parse_json_lines`."""
    return parse_json_lines(json_lines(spark, source, files), source, schema, F.col("value"), F.col(_FILE))


@dataclass(frozen=True)
class JsonScan:
    """What one pass over the lines of JSON-lines files tells before they are parsed.

    ``lines``: records (non-blank lines) per file. ``fast``: the files Spark's JSON reader can
    parse with the same result as :func:`parse_json_lines` - every line starts with ``{`` (so the
    reader makes exactly one row of it) and no line has a top-level key outside the contract
    (nothing to rescue). ``broken``: per file, ``xxhash64`` of each line that is not a JSON
    object (malformed, cut off); such a line goes to quarantine on either path.
    ``broken_bytes``: per file, the UTF-8 bytes of those lines.
    """

    lines: dict[str, int]
    fast: frozenset[str]
    broken: dict[str, list[int]]
    broken_bytes: dict[str, int]


def json_reader_allowed(source: Source) -> bool:
    """Whether Spark's JSON reader may take any of the source's files: not when a reader option
    splits or decodes lines otherwise than the text parser does, nor when an ``allow...`` option
    (comments, single quotes, ...) makes it accept lines the key scan calls broken."""
    opts = set(_opts(source))
    return (source.format in ("json", "jsonl") and not opts & _LINE_OPTIONS
            and not any(o.lower().startswith("allow") for o in opts))


def scan_json_files(spark: SparkSession, source: Source, schema: T.StructType, files: list[str]) -> JsonScan:
    """One pass over the bytes of ``files``: the top-level keys of every line (the drift check
    :func:`parse_json_lines` makes per line, made here per file), one small result per file.

    The scan is ``io.cdp.bronze.JsonLinesScan`` (cdp_lib/jvm/src), a Spark job of one task per
    piece of a file that splits lines as the text reader does and decides each line as
    ``trim``, ``startswith('{')``, ``is_valid_utf8``, ``json_object_keys`` and ``xxhash64``
    decide it, without making rows of the lines: about half the time of the same scan in Spark
    SQL on the 1M web events (docs/benchmarks.md); tests/test_bronze_json_scan.py holds the two
    equal.
    """
    if not json_reader_allowed(source):
        raise ValueError(f"source {source.name}: its reader options split, decode or relax lines; "
                         "the key scan reads UTF-8 JSON lines only")
    if not files:
        return JsonScan({}, frozenset(), {}, {})
    state = spark._jsparkSession.sessionState()
    out = spark._jvm.io.cdp.bronze.JsonLinesScan.scan(
        spark._jsc, state.newHadoopConf(), "\n".join(files), "\n".join(schema.fieldNames()),
        state.conf().filesMaxPartitionBytes())  # pieces as the file readers split
    lines, fast, broken, broken_bytes = {}, set(), {}, {}
    for path, row in zip(files, out.splitlines(), strict=True):
        n, drift, odd, n_bytes, hashes = row.split("\t")
        if int(n) == 0:
            continue  # no record: nothing to tell, as a file without rows tells nothing
        key = spark_path(spark, path)  # as the readers name the file
        lines[key], broken_bytes[key] = int(n), int(n_bytes)
        broken[key] = [int(h) for h in hashes.split(",")] if hashes else []
        if int(drift) == 0 and int(odd) == 0:
            fast.add(key)
    return JsonScan(lines=lines, fast=frozenset(fast), broken=broken, broken_bytes=broken_bytes)


def broken_line(raw: Column) -> Column:
    """Whether ``raw`` (a line) is not a JSON object at all: a line :func:`scan_json_files` hashes
    as broken. Evaluate it on the few bad rows only (it parses the line's keys)."""
    return raw.isNotNull() & F.json_object_keys(raw).isNull()


def reparse_json_lines(spark: SparkSession, source: Source, schema: T.StructType, files: list[str],
                       only: dict[str, list[int]] | None = None) -> DataFrame:
    """:func:`parse_json_lines` over ``files``; of a file in ``only``, just the lines whose
    ``xxhash64`` is listed (the hash is a pre-filter: a colliding good line parses as good)."""
    only = only or {}
    whole = [f for f in files if f not in only]
    lines = json_lines(spark, source, whole) if whole else None
    picked = [f for f in files if f in only]
    if picked:
        hashes = spark.createDataFrame([(h,) for h in sorted({h for f in picked for h in only[f]})],
                                       "_cdp_hash long")
        some = (json_lines(spark, source, picked).withColumn("_cdp_hash", F.xxhash64("value"))
                .join(F.broadcast(hashes), "_cdp_hash", "left_semi").drop("_cdp_hash"))
        lines = some if lines is None else lines.unionByName(some)
    return parse_json_lines(lines, source, schema, F.col("value"), F.col(_FILE))


def read_json_fast(spark: SparkSession, source: Source, schema: T.StructType, files: list[str]) -> DataFrame:
    """Files :func:`scan_json_files` found ``fast``, parsed by Spark's JSON reader (no text
    column, no per-line key scan: about twice as fast as :func:`parse_json_lines`).

    The good rows equal :func:`parse_json_lines`' on these files; a bad row gets a reason, and
    ``_raw`` is its line when the reader could not parse it (null for a row that breaks only a
    ``nullable: false`` rule): take quarantine rows from :func:`parse_json_lines`.
    """
    opts = _opts(source)
    read_schema = T.StructType(schema.fields + [T.StructField(_CORRUPT, T.StringType())])
    df = (
        # NaN/Infinity: not JSON to json_object_keys, so the text parser quarantines such a line.
        spark.read.options(**opts).option("allowNonNumericNumbers", False)
        .option("mode", "PERMISSIVE").option("columnNameOfCorruptRecord", _CORRUPT)
        .schema(read_schema).json(files)
        .select("*", F.col("_metadata.file_path").alias(_FILE))
    )
    bad = F.when(F.col(_CORRUPT).isNotNull(), F.lit("malformed json or a field not of its declared type"))
    return conform(df, source, schema, F.col(_FILE), bad, F.col(_CORRUPT), F.lit(None).cast("string"))


def _read_parquet(spark: SparkSession, source: Source, schema: T.StructType, files: list[str]) -> DataFrame:
    """Parquet carries its own types: the union of the files' schemas (footers only) is read,
    then conformed (cast to the contract, extra columns rescued)."""
    opts = _opts(source)
    try:
        actual = spark.read.options(**opts).option("mergeSchema", True).parquet(*files).schema
    except Exception as exc:  # noqa: BLE001 - conflicting footers surface as several JVM errors
        raise SchemaContractError(
            f"source {source.name}: the files' Parquet schemas conflict ({type(exc).__name__})"
        ) from None
    df = spark.read.options(**opts).schema(actual).parquet(*files).select(
        "*", F.col("_metadata.file_path").alias(_FILE))
    return conform(df, source, schema, F.col(_FILE))


def read_files(spark: SparkSession, source: Source, schema: T.StructType, files: list[str]) -> DataFrame:
    """All ``files`` of one batch of a file source, in one read, as a parsed frame."""
    if source.format == "csv":
        return _read_csv(spark, source, schema, files)
    if source.format in ("json", "jsonl"):
        return _read_json_lines(spark, source, schema, files)
    if source.format == "parquet":
        return _read_parquet(spark, source, schema, files)
    raise ValueError(f"not a file format: {source.format}")


def read_jdbc(spark: SparkSession, source: Source, schema: T.StructType, query: str,
              credentials: dict[str, str]) -> DataFrame:
    """One JDBC query (a watermark window) as a parsed frame; ``_source_query`` is the query."""
    df = (
        spark.read.format("jdbc").options(**_opts(source), **credentials)
        .option("url", source.jdbc.url).option("query", query).load()
    )
    return conform(df, source, schema, F.lit(query))
