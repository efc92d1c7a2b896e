"""Which bronze rows are new for an entity: Delta versions tracked in ``ops.silver_watermarks``.

One row per (entity, bronze table): the bronze Delta version the entity has consumed up
to. A run pins the bronze table's current version, reads the rows committed after the
watermark (Change Data Feed inserts; bronze is append-only), and advances the watermark
only after the silver MERGE committed. A crash in between re-reads the same rows next
time, which the MERGE absorbs (it is idempotent).
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from cdp_lib.lakehouse import ChangeFeedUnavailable, Lakehouse, VersionUnavailable

__all__ = ["WATERMARK_SCHEMA", "Watermarks", "read_watermarks", "save_watermarks", "read_bronze_since"]

log = logging.getLogger(__name__)

WATERMARK_TABLE = "silver_watermarks"
WATERMARK_SCHEMA = T.StructType(
    [
        T.StructField("entity", T.StringType(), False),
        T.StructField("bronze_table", T.StringType(), False),
        T.StructField("bronze_version", T.LongType(), False),
        T.StructField("run_id", T.StringType(), False),
        T.StructField("updated_at", T.TimestampType(), False),
    ]
)
_CDF_COLUMNS = ("_change_type", "_commit_version", "_commit_timestamp")


def read_watermarks(lakehouse: Lakehouse, entity: str | None = None) -> dict:
    """Bronze table -> last consumed version for ``entity`` (empty on a first run); without
    ``entity``, every entity's: ``{entity: {bronze table: version}}``."""
    if not lakehouse.exists("ops", WATERMARK_TABLE):
        return {}
    table = lakehouse.read("ops", WATERMARK_TABLE)
    if entity is not None:
        table = table.where(F.col("entity") == entity)
    out: dict[str, dict[str, int]] = {}
    for r in table.collect():
        out.setdefault(r.entity, {})[r.bronze_table] = int(r.bronze_version)
    return out.get(entity, {}) if entity is not None else out


class Watermarks:
    """The watermarks of one silver run: read once, advanced per entity, saved in one commit.

    An entity's new versions are staged only after its silver MERGE committed; :meth:`save`
    upserts every staged entity at once (the stage calls it even when a later entity fails).
    A crash before the save re-reads those entities' rows next run, which the MERGEs absorb:
    the same guarantee as saving after each entity, for one commit instead of one per entity.
    """

    def __init__(self, lakehouse: Lakehouse):
        self.lakehouse = lakehouse
        self._current = read_watermarks(lakehouse)
        self._staged: dict[str, dict[str, int]] = {}

    def get(self, entity: str) -> dict[str, int]:
        return dict(self._current.get(entity, {}))

    def advance(self, entity: str, versions: dict[str, int]) -> None:
        if versions:
            self._staged.setdefault(entity, {}).update(versions)

    def save(self, run_id: str) -> None:
        rows = [(e, t, v) for e, versions in sorted(self._staged.items()) for t, v in sorted(versions.items())]
        _upsert(self.lakehouse, rows, run_id)
        for e, versions in self._staged.items():
            self._current.setdefault(e, {}).update(versions)
        self._staged = {}


def save_watermarks(lakehouse: Lakehouse, entity: str, versions: dict[str, int], run_id: str) -> None:
    """Upsert the consumed versions of ``entity`` in one commit."""
    _upsert(lakehouse, [(entity, t, v) for t, v in sorted(versions.items())], run_id)


def _upsert(lakehouse: Lakehouse, entries: list[tuple[str, str, int]], run_id: str) -> None:
    if not entries:
        return
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    rows = [(entity, table, int(v), run_id, now) for entity, table, v in entries]
    updates = lakehouse.spark.createDataFrame(rows, WATERMARK_SCHEMA)
    if not lakehouse.exists("ops", WATERMARK_TABLE):
        updates.write.format("delta").save(lakehouse.path("ops", WATERMARK_TABLE))
        return
    (
        lakehouse.delta("ops", WATERMARK_TABLE).alias("t")
        .merge(updates.alias("s"), "t.entity = s.entity AND t.bronze_table = s.bronze_table")
        .whenMatchedUpdateAll()
        .whenNotMatchedInsertAll()
        .execute()
    )


def _cdf_enabled(lakehouse: Lakehouse, table: str) -> bool:
    return str(lakehouse.properties("bronze", table).get("delta.enableChangeDataFeed", "false")).lower() == "true"


def read_bronze_since(lakehouse: Lakehouse, table: str, since: int | None, until: int) -> DataFrame:
    """Rows of ``bronze.<table>`` committed in versions ``(since, until]`` (all rows when since is None;
    else ``since < until``)."""
    spark = lakehouse.spark
    path = lakehouse.path("bronze", table)
    snapshot = spark.read.format("delta").option("versionAsOf", until).load(path)
    if since is None:
        return snapshot
    if _cdf_enabled(lakehouse, table):
        try:
            changes = lakehouse.changes("bronze", table, since, until)
        except ChangeFeedUnavailable as exc:
            log.warning("silver: no change feed: %s; diffing snapshots", exc)
        else:
            return changes.where(F.col("_change_type").isin("insert", "update_postimage")).drop(*_CDF_COLUMNS)
    # Append-only bronze: the rows of the newer snapshot not in the older one.
    try:
        previous = lakehouse.snapshot("bronze", table, since)
    except VersionUnavailable as exc:
        # Older than the file retention (silver did not run for that long): every row is read again.
        # Silver's merges keep the rows they hold (first or latest per key; quarantine insert-if-absent).
        log.warning("silver: %s; every row of bronze.%s is read again", exc, table)
        return snapshot
    return snapshot.exceptAll(previous)
