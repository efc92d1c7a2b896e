"""Where tables live: ``<root>/<layer>/<table>`` as Delta, registered as ``layer.table``.

The catalog is Spark's in-memory one (no metastore service to run), so
:meth:`Lakehouse.register_all` re-registers every Delta table found under the root
each time a session starts; ``spark.sql("select * from gold.customer_profile")`` then
works in notebooks and jobs alike.
"""

from __future__ import annotations

import logging
import re

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession

from cdp_lib.config import Settings, join_path

__all__ = ["LAYERS", "Lakehouse", "split_table_name"]

log = logging.getLogger(__name__)

LAYERS = ("bronze", "silver", "gold", "ops")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def split_table_name(name: str) -> tuple[str, str]:
    """``"silver.contacts"`` -> ``("silver", "contacts")``: config names tables as layer.table."""
    layer, _, table = name.partition(".")
    return layer, table


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

    def read(self, layer: str, table: str) -> DataFrame:
        return self.spark.read.format("delta").load(self.path(layer, table))

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

    def register(self, layer: str, table: str) -> None:
        """Make ``layer.table`` resolvable in SQL (idempotent)."""
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
