"""Where tables live: ``<root>/<layer>/<table>`` as Delta, registered as ``layer.table``.

The catalog is Spark's in-memory one (no metastore service to run), so
:meth:`Lakehouse.register_all` re-registers every Delta table found under the root
each time a session starts; ``spark.sql("select * from gold.customer_profile")`` then
works in notebooks and jobs alike.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession

from cdp_lib.config import Settings, join_path
from cdp_lib.errors import CdpError
from cdp_lib.session import temporary_conf

__all__ = ["LAYERS", "ChangeFeedUnavailable", "Lakehouse", "VersionUnavailable", "describe_error", "split_table_name"]

log = logging.getLogger(__name__)
_PROPERTY = re.compile(r"[A-Za-z0-9._-]+")
_PROPERTY_VALUE = re.compile(r"[A-Za-z0-9._-]+( [A-Za-z0-9._-]+)*")  # also "interval 168 hours"

LAYERS = ("bronze", "silver", "gold", "ops")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_CATALOG = threading.Lock()  # see Lakehouse.register


class VersionUnavailable(Exception):
    """A table version can no longer be read: older than the table's file retention (VACUUM may have
    removed its files), or its commits were cleaned up (log retention)."""


class ChangeFeedUnavailable(Exception):
    """A table's Change Data Feed cannot be read for a range of versions: it was switched off for part
    of it, or those versions were cleaned up (log retention, VACUUM). A reader recomputes from the table."""


def describe_error(exc: Exception) -> str:
    """An exception's type and, for Spark's, its error condition (``DELTA_MISSING_CHANGE_DATA``): no message,
    which may quote data."""
    condition = getattr(exc, "getCondition", lambda: None)()
    return f"{type(exc).__name__}: {condition}" if condition else type(exc).__name__


def split_table_name(name: str) -> tuple[str, str]:
    """``"silver.contacts"`` -> ``("silver", "contacts")``: config names tables as layer.table."""
    layer, _, table = name.partition(".")
    return layer, table


def _columns(df: DataFrame) -> set[tuple[str, str]]:
    """Names and types (not nullability) of ``df``'s columns."""
    return {(f.name, f.dataType.simpleString()) for f in df.schema.fields}


class Lakehouse:
    """Paths and catalog names of the lakehouse tables for one session."""

    def __init__(self, spark: SparkSession, settings: Settings):
        self.spark = spark
        self.settings = settings
        self.root = settings.lakehouse.root

    @staticmethod
    def _check(layer: str, table: str) -> None:
        if layer not in LAYERS:
            raise ValueError(f"unknown layer {layer!r}; expected one of {LAYERS}")
        if not _NAME.match(table):
            raise ValueError(f"invalid table name {table!r}: use lower_snake_case")

    def path(self, layer: str, table: str) -> str:
        self._check(layer, table)
        return join_path(self.root, layer, table)

    def checkpoint(self, *parts: str) -> str:
        return join_path(self.settings.lakehouse.checkpoint_root, *parts)

    def exists(self, layer: str, table: str) -> bool:
        return DeltaTable.isDeltaTable(self.spark, self.path(layer, table))

    def delta(self, layer: str, table: str) -> DeltaTable:
        return DeltaTable.forPath(self.spark, self.path(layer, table))

    def read(self, layer: str, table: str, version: int | None = None) -> DataFrame:
        """The table, or its snapshot at ``version`` (time travel: a run pins what it reads)."""
        reader = self.spark.read.format("delta")
        if version is not None:
            reader = reader.option("versionAsOf", version)
        return reader.load(self.path(layer, table))

    def snapshot(self, layer: str, table: str, version: int) -> DataFrame:
        """The table at ``version``, checked readable by planning the read (no job runs). Raises
        :class:`VersionUnavailable` when it is not: see :meth:`changes` for why a version expires."""
        try:
            df = self.read(layer, table, version)  # Delta refuses an expired version here, or when planning
            df._jdf.queryExecution().executedPlan()
        except Exception as exc:
            raise VersionUnavailable(f"{layer}.{table} version {version} ({describe_error(exc)})") from exc
        return df

    def changes(self, layer: str, table: str, since: int | None, until: int) -> DataFrame | None:
        """The Change Data Feed of versions ``(since, until]`` (all versions when ``since`` is None),
        with ``_change_type``; None when that range is empty.

        Raises :class:`ChangeFeedUnavailable` when the feed of the range cannot be read. That is checked
        here by planning the read (no job runs: the driver reads the range's commits). Loading it checks
        only that the versions exist; planning, that change data was recorded for each of them and that
        the range starts within the table's file retention (``delta.deletedFileRetentionDuration``,
        ``lakehouse.retention_hours`` once ``cdp maintain`` ran): Delta refuses to read an older version
        (DELTA_UNSUPPORTED_TIME_TRAVEL_BEYOND_DELETED_FILE_RETENTION_DURATION), since VACUUM may have
        removed its files, so a reader never fails part-way through for that reason.
        """
        start = 0 if since is None else since + 1
        if start > until:
            return None
        try:
            feed = (
                self.spark.read.format("delta").option("readChangeFeed", "true")
                .option("startingVersion", start).option("endingVersion", until)
                .load(self.path(layer, table))
            )
            feed._jdf.queryExecution().executedPlan()
        except Exception as exc:
            raise ChangeFeedUnavailable(f"{layer}.{table} versions {start}..{until} ({describe_error(exc)})") from exc
        return feed

    def sync(self, df: DataFrame, layer: str, table: str, keys: list[str],
             scope: Callable[[DataFrame], DataFrame] | None = None, compare: list[str] | None = None,
             properties: dict[str, str] | None = None) -> int:
        """Make the table hold exactly ``df``'s rows (unique on ``keys``); returns rows changed.

        A first run writes the table. Later runs compare ``df`` with the table and MERGE only
        the difference (rows added, removed, or whose other columns changed) in one commit, or
        commit nothing when nothing differs. So the table's Change Data Feed carries what really
        changed: an overwrite would report every row as deleted and re-inserted, and every
        downstream incremental step would redo everything. ``df`` must not be computed lazily
        from this table (checkpoint it first).

        ``scope``: when only some rows can have changed, a filter selecting them (applied to the
        table's rows; ``df`` holds the new rows of that scope only): rows outside it are neither
        compared nor touched. ``compare``: the columns that decide whether a row changed (default:
        every column but the keys), e.g. a content hash: a row whose hash is the same keeps its
        other columns (say, the run that last changed it) as they are. ``properties``: Delta table
        properties the table must have (:meth:`set_properties`), set before the MERGE (say, deletion
        vectors, so that it rewrites no unchanged row) and on a table this call writes whole.
        """
        from pyspark.sql import functions as F

        path = self.path(layer, table)
        current = self.read(layer, table) if self.exists(layer, table) else None
        if current is None or _columns(current) != _columns(df):
            if current is not None:
                # A column added, dropped or retyped (a new trait, an enrichment table that
                # appeared): a MERGE would ignore or fail on it, so the whole table is rewritten once.
                if scope is not None:
                    raise CdpError(f"{layer}.{table}: its columns differ from the rows to publish; a "
                                   "scoped sync cannot rewrite it (run a full rebuild)")
                log.info("%s.%s: columns changed; table rewritten", layer, table)
            df.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(path)
            if properties:
                self.set_properties(layer, table, properties)
            return self.read(layer, table).count()  # from the commit's statistics, not recomputing df
        if properties:
            self.set_properties(layer, table, properties)
        values = [c for c in df.columns if c not in keys]
        compared = values if compare is None else compare
        new = df.select(*keys, *[F.col(c).alias(f"_n_{c}") for c in values], F.lit(True).alias("_in_new"))
        old = (scope(current) if scope is not None else current).select(
            *[F.col(k).alias(f"_k_{k}") for k in keys], *[F.col(c).alias(f"_o_{c}") for c in compared],
            F.lit(True).alias("_in_old"),
        )
        on = [new[k].eqNullSafe(old[f"_k_{k}"]) for k in keys]
        joined = new.join(old, on, "full_outer")
        differs = F.lit(False)
        for c in compared:
            differs = differs | ~F.col(f"_n_{c}").eqNullSafe(F.col(f"_o_{c}"))
        changes = joined.where(F.col("_in_old").isNull() | F.col("_in_new").isNull() | differs).select(
            *[F.coalesce(F.col(k), F.col(f"_k_{k}")).alias(k) for k in keys],
            *[F.col(f"_n_{c}").alias(c) for c in values],
            F.when(F.col("_in_new").isNull(), F.lit("delete")).otherwise(F.lit("upsert")).alias("_op"),
        ).localCheckpoint()  # the MERGE below changes the table this was computed from
        n = changes.count()
        if n == 0:
            return 0
        cols = {c: f"s.`{c}`" for c in df.columns}
        (
            self.delta(layer, table).alias("t")
            .merge(changes.alias("s"), " and ".join(f"t.`{k}` <=> s.`{k}`" for k in keys))
            .whenMatchedDelete(condition="s._op = 'delete'")
            .whenMatchedUpdate(condition="s._op = 'upsert'", set=cols)
            .whenNotMatchedInsert(condition="s._op = 'upsert'", values=cols)
            .execute()
        )
        return n

    def properties(self, layer: str, table: str) -> dict[str, str]:
        """The table's Delta properties (``delta.enableChangeDataFeed`` ...) as its latest commit has them."""
        return self.delta(layer, table).detail().select("properties").first()[0] or {}

    def set_properties(self, layer: str, table: str, properties: dict[str, str]) -> bool:
        """Give the table the Delta ``properties`` it lacks (one ALTER TABLE commit); False when it has them all.

        A property asked to be ``"false"`` is taken as present when the table does not set it (Delta's
        feature flags default to false). Enabling a feature such as deletion vectors upgrades the
        table's protocol: readers older than the feature (Delta < 2.3 for deletion vectors) cannot
        read it until the feature is dropped (``ALTER TABLE ... DROP FEATURE deletionVectors``).
        """
        for k, v in properties.items():
            if not (_PROPERTY.fullmatch(k) and _PROPERTY_VALUE.fullmatch(str(v))):
                raise CdpError(f"{layer}.{table}: table property {k!r} = {v!r}: only letters, digits, '.', '_', '-' "
                               "(and single spaces inside values)")
        have = self.properties(layer, table)
        missing = {k: str(v) for k, v in properties.items()
                   if have.get(k, "false" if str(v) == "false" else None) != str(v)}
        if not missing:
            return False
        settings = ", ".join(f"'{k}' = '{v}'" for k, v in sorted(missing.items()))
        path = self.path(layer, table).replace("`", "``")
        self.spark.sql(f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES ({settings})")
        log.info("%s.%s: table properties set: %s", layer, table, settings)
        return True

    def compact(self, layer: str, table: str, every: int) -> bool:
        """OPTIMIZE the table once ``every`` commits changed its rows since its files were last rewritten.

        Each MERGE, UPDATE, DELETE or append adds a few small files and, with deletion vectors, a
        MERGE leaves the rows it replaced in the old files, marked deleted: readers list more files
        and read rows they then drop. Compaction rewrites the table's files without the deleted rows,
        with no change of data (its commit is not in the change feed). A compaction, an overwrite,
        a (re)creation, a RESTORE or a REORG rewrote the files; other commits (table properties,
        columns) are skipped. Returns whether a compaction was committed; ``every`` 0: never.
        """
        if every <= 0:
            return False
        since = 0
        history = self.delta(layer, table).history(2 * every + 2).select("operation", "operationParameters")
        for row in history.collect():
            mode = (row.operationParameters or {}).get("mode")
            if row.operation in ("MERGE", "UPDATE", "DELETE") or (row.operation == "WRITE" and mode == "Append"):
                since += 1
            elif row.operation.startswith(("OPTIMIZE", "WRITE", "CREATE", "REPLACE", "RESTORE", "REORG")):
                break
        if since < every:
            return False
        before = self.version(layer, table)
        self.delta(layer, table).optimize().executeCompaction()
        compacted = self.version(layer, table) != before  # no commit when there was nothing to compact
        log.info("%s.%s: %s after %d changes", layer, table, "compacted" if compacted else "nothing to compact", since)
        return compacted

    def append_once(self, df: DataFrame, layer: str, table: str, app_id: str, version: int) -> bool:
        """Append ``df`` to ``layer.table`` unless the writer ``app_id`` already committed its
        ``version`` there (Delta's idempotent writes: a replayed batch is skipped). New columns are
        added (additive schema evolution). Returns whether this call committed."""
        before = self.version(layer, table)
        (
            df.write.format("delta").mode("append")
            .option("txnAppId", app_id)
            .option("txnVersion", version)
            .option("mergeSchema", True)
            .save(self.path(layer, table))
        )
        return before is None or self.version(layer, table) != before

    @contextmanager
    def commit_tag(self, tag: str) -> Iterator[None]:
        """Every Delta commit made inside the block carries ``tag`` as its ``userMetadata``.

        A later run reads it back with :meth:`tagged` to learn whether a commit of an interrupted
        run reached a table (what a multi-table publish needs to finish or roll forward).
        """
        with temporary_conf(self.spark, {"spark.databricks.delta.commitInfo.userMetadata": tag}):
            yield

    def tagged(self, layer: str, table: str, tag: str, last: int = 50) -> bool:
        """True when one of the table's ``last`` commits carries ``tag`` (see :meth:`commit_tag`)."""
        if not self.exists(layer, table):
            return False
        history = self.delta(layer, table).history(last).select("userMetadata")
        return bool(history.where(history.userMetadata == tag).take(1))

    def version(self, layer: str, table: str) -> int | None:
        """Latest committed Delta version, or None when the table does not exist.

        Read from the commit files' names in ``_delta_log`` (one listing, as Delta itself finds
        the latest version) instead of ``history(1)``, which plans and runs a query: stages ask
        for versions of every input table on each run, and that fixed cost added up.
        """
        jvm = self.spark._jvm
        log_dir = jvm.org.apache.hadoop.fs.Path(join_path(self.path(layer, table), "_delta_log"))
        fs = log_dir.getFileSystem(self.spark._jsc.hadoopConfiguration())
        if not fs.exists(log_dir):
            return None
        versions = [int(m.group(1)) for s in fs.listStatus(log_dir) if (m := _JSON_COMMIT.match(s.getPath().getName()))]
        return max(versions) if versions else None

    def commit_millis(self, layer: str, table: str, version: int) -> int | None:
        """When ``version`` was committed (its commit file's time, which Delta's history, time travel and
        VACUUM go by), in epoch milliseconds; None when the log no longer holds it. No Spark job."""
        jvm = self.spark._jvm
        commit = jvm.org.apache.hadoop.fs.Path(join_path(self.path(layer, table), "_delta_log", f"{version:020d}.json"))
        fs = commit.getFileSystem(self.spark._jsc.hadoopConfiguration())
        return int(fs.getFileStatus(commit).getModificationTime()) if fs.exists(commit) else None

    def storage(self, layer: str, table: str) -> tuple[int, int]:
        """(files, bytes) of the table's data: everything under its directory but the log (data files
        of every version not yet vacuumed, change data, deletion vectors); (0, 0) when absent."""
        jvm = self.spark._jvm
        path = jvm.org.apache.hadoop.fs.Path(self.path(layer, table))
        fs = path.getFileSystem(self.spark._jsc.hadoopConfiguration())
        if not fs.exists(path):
            return 0, 0
        whole = fs.getContentSummary(path)
        log_dir = path.suffix("/_delta_log")
        log_part = fs.getContentSummary(log_dir) if fs.exists(log_dir) else None
        files, size = int(whole.getFileCount()), int(whole.getLength())
        if log_part is not None:
            files, size = files - int(log_part.getFileCount()), size - int(log_part.getLength())
        return files, size

    def stored_bytes(self, layer: str, table: str) -> int:
        """Bytes under the table's directory (data files not yet vacuumed and the log included):
        a size to order work by, from one file-system call and no Spark job; 0 when absent."""
        jvm = self.spark._jvm
        path = jvm.org.apache.hadoop.fs.Path(self.path(layer, table))
        fs = path.getFileSystem(self.spark._jsc.hadoopConfiguration())
        return int(fs.getContentSummary(path).getLength()) if fs.exists(path) else 0

    def register(self, layer: str, table: str) -> None:
        """Make ``layer.table`` resolvable in SQL (idempotent; lanes of one session may call it at
        once: two threads must not both find a table missing and create it)."""
        with _CATALOG:
            self._register(layer, table)

    def _register(self, layer: str, table: str) -> None:
        if not self.spark.catalog.databaseExists(layer):  # (IF NOT EXISTS alone warns when it does)
            self.spark.sql(f"CREATE DATABASE IF NOT EXISTS {layer}")
        self.spark.sql(f"CREATE TABLE IF NOT EXISTS {layer}.{table} USING delta LOCATION '{self.path(layer, table)}'")

    def tables(self, layer: str) -> list[str]:
        """Names of the Delta tables present under ``<root>/<layer>``."""
        jvm = self.spark._jvm
        base = jvm.org.apache.hadoop.fs.Path(join_path(self.root, layer))
        fs = base.getFileSystem(self.spark._jsc.hadoopConfiguration())
        if not fs.exists(base):
            return []
        names = []
        for status in fs.listStatus(base):
            name = status.getPath().getName()
            if status.isDirectory() and _NAME.match(name) and _has_commit(fs, status.getPath().suffix("/_delta_log")):
                names.append(name)
        return sorted(names)

    def register_all(self) -> list[str]:
        registered = []
        for layer in LAYERS:
            for table in self.tables(layer):
                self.register(layer, table)
                registered.append(f"{layer}.{table}")
        log.info("registered %d lakehouse tables", len(registered))
        return registered


_COMMIT = re.compile(r"^\d{20}\.(json|checkpoint.*\.(parquet|json))$")
_JSON_COMMIT = re.compile(r"^(\d{20})\.json$")


def _has_commit(fs, log_dir) -> bool:
    """A table whose first commit was interrupted (a killed job) has a _delta_log without commits."""
    return fs.exists(log_dir) and any(_COMMIT.match(s.getPath().getName()) for s in fs.listStatus(log_dir))
