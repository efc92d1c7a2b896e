"""Source declarations (``conf/sources.yaml``): where a source lands, its format and its contract.

A source is YAML only: a new source with arbitrary column names needs no code. The contract
is the explicit schema bronze reads with (no inference on production paths): a list of
``{name, type}`` where ``type`` is a Spark SQL type string (``string``, ``int``,
``decimal(12,2)``, ``timestamp``, ``array<struct<...>>``, ``map<string,string>``, ...).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pyspark.sql import SparkSession
from pyspark.sql import types as T

from cdp_lib.config import StrictModel, default_conf_dir, iana_zone, join_path, load_model
from cdp_lib.errors import ConfigError

__all__ = [
    "ContractColumn",
    "JdbcSpec",
    "Source",
    "SourcesConfig",
    "LINEAGE_COLUMNS",
    "RESERVED_PREFIX",
    "load_sources",
    "contract_schema",
    "source_location",
]

RESERVED_PREFIX = "_"
LINEAGE_COLUMNS = ("_ingested_at", "_batch_id", "_source", "_source_file", "_source_query", "_rescued")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_URI = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
_OFFSET = re.compile(r"^[+-]((0\d|1[0-7]):[0-5]\d|18:00)$")  # java.time's range: -18:00 to +18:00


class ContractColumn(StrictModel):
    """One contract column. ``nullable: false`` sends rows with a null value to quarantine."""

    name: str = Field(min_length=1)
    type: str = Field(min_length=1)
    nullable: bool = True

    @model_validator(mode="after")
    def _not_reserved(self):
        if self.name.startswith(RESERVED_PREFIX):
            raise ValueError(f"column {self.name!r}: names starting with '_' are reserved for lineage columns")
        return self


class JdbcSpec(StrictModel):
    """A table or query in a database, read incrementally by a watermark column.

    Credentials never live in YAML: ``user_env`` / ``password_env`` name environment variables.
    """

    url: str
    table: str | None = None
    query: str | None = None
    watermark_column: str
    user_env: str | None = None
    password_env: str | None = None

    @model_validator(mode="after")
    def _table_or_query(self):
        if (self.table is None) == (self.query is None):
            raise ValueError("give exactly one of 'table' or 'query'")
        return self

    @property
    def relation(self) -> str:
        return self.table if self.table else f"({self.query}) AS q"


class Source(StrictModel):
    name: str
    format: Literal["csv", "json", "jsonl", "parquet", "jdbc"]
    entity: str
    path: str | None = None
    jdbc: JdbcSpec | None = None
    options: dict[str, str | int | float | bool] = Field(default_factory=dict)
    contract: list[ContractColumn] = Field(min_length=1)
    identifiers: dict[str, str] = Field(default_factory=dict)
    enabled: bool = True  # false: ingested only when named (``cdp ingest --source NAME``)

    @model_validator(mode="after")
    def _check(self):
        if not _NAME.match(self.name):
            raise ValueError(f"source name {self.name!r}: use lower_snake_case (it names the bronze table)")
        if self.format == "jdbc":
            if self.jdbc is None or self.path is not None:
                raise ValueError("a jdbc source needs a 'jdbc' block and no 'path'")
            if self.jdbc.watermark_column not in self.column_names:
                raise ValueError(f"jdbc.watermark_column {self.jdbc.watermark_column!r} is not a contract column")
        elif self.path is None or self.jdbc is not None:
            raise ValueError(f"a {self.format} source needs a 'path' (glob) and no 'jdbc' block")
        names = self.column_names
        if len(set(names)) != len(names):
            raise ValueError("contract: duplicate column names")
        for column, id_type in self.identifiers.items():
            if column.split(".")[0] not in names:
                raise ValueError(f"identifiers.{column}: not a contract column")
            if not _NAME.match(id_type):
                raise ValueError(f"identifiers.{column}: id type {id_type!r} must be lower_snake_case")
        if len([k for k in self.options if k.lower() == "timezone"]) > 1:
            raise ValueError("options: timeZone given more than once (option names ignore case)")
        zone = self.time_zone
        if zone is not None and not _OFFSET.match(zone) and not iana_zone(zone):
            raise ValueError(f"options.timeZone {zone!r}: not an IANA time zone or a quoted '+hh:mm' offset")
        return self

    @property
    def time_zone(self) -> str | None:
        """The zone of timestamps written without an offset (option ``timeZone``, any case, as Spark's
        readers take it); None: the session's, UTC. Text with an offset or zone keeps it."""
        for key, value in self.options.items():
            if key.lower() == "timezone":
                return str(value)
        return None

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.contract]

    @property
    def lineage_column(self) -> str:
        return "_source_query" if self.format == "jdbc" else "_source_file"


class SourcesConfig(StrictModel):
    sources: list[Source]
    # Sources written at once (threads of one SparkSession): a small source's driver-side work
    # (planning, Delta commits) overlaps a large one's tasks. 1 writes them one by one.
    parallel: int = Field(default=2, ge=1, le=16)

    @model_validator(mode="after")
    def _unique(self):
        names = [s.name for s in self.sources]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate source names: {', '.join(dupes)}")
        return self

    def get(self, name: str) -> Source:
        for source in self.sources:
            if source.name == name:
                return source
        raise ConfigError("sources.yaml", "sources", f"no source named {name!r}; known: {', '.join(self.names)}")

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.sources]


def load_sources(conf_dir: Path | str | None = None) -> SourcesConfig:
    """Load and validate ``conf/sources.yaml``."""
    return load_model(SourcesConfig, "sources", Path(conf_dir) if conf_dir else default_conf_dir())


def contract_schema(spark: SparkSession, source: Source) -> T.StructType:
    """The contract as a StructType; an invalid type string raises ConfigError naming the column."""
    fields = []
    for i, column in enumerate(source.contract):
        try:
            data_type = T._parse_datatype_string(column.type)
        except Exception:  # noqa: BLE001 - Spark raises several parse error types
            raise ConfigError("sources.yaml", f"{source.name}.contract.{i}.type",
                              f"{column.type!r} is not a Spark SQL type") from None
        if source.format == "csv" and not isinstance(data_type, T.AtomicType):
            raise ConfigError("sources.yaml", f"{source.name}.contract.{i}.type",
                              f"{column.type!r}: CSV columns must be atomic types")
        fields.append(T.StructField(column.name, data_type, True))
    schema = T.StructType(fields)
    for column in source.identifiers:
        if not _has_path(schema, column.split(".")):
            raise ConfigError("sources.yaml", f"{source.name}.identifiers.{column}", "no such (nested) contract column")
    return schema


def _has_path(schema: T.DataType, parts: list[str]) -> bool:
    if not parts:
        return True
    if isinstance(schema, T.StructType) and parts[0] in schema.fieldNames():
        return _has_path(schema[parts[0]].dataType, parts[1:])
    if isinstance(schema, T.MapType):
        return len(parts) == 1
    return False


def source_location(source: Source, landing: str) -> str:
    """The source's glob: relative paths are under the landing root, URIs/absolute paths as given."""
    if _URI.match(source.path) or source.path.startswith("/"):
        return source.path
    return join_path(landing, source.path)
