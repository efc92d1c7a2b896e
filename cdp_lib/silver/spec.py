"""``conf/silver.yaml``: which bronze tables feed which silver entity, and how.

Per entity: the silver columns with their normaliser, the business key, how versions
are ordered (``keep: latest`` by ``order_by``, or ``keep: first`` seen), one mapping per
bronze source (silver column -> Spark SQL expression over the bronze row), and the
expectations. Loading validates both shape and meaning (a key must be a column, a time
zone must exist, ...), naming the file and key on error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import phonenumbers
from pydantic import Field, model_validator
from pyspark.sql import types as T

from cdp_lib.config import StrictModel, iana_zone, load_model

__all__ = [
    "NORMALIZER_TYPES",
    "VALIDATING_NORMALIZERS",
    "Expectation",
    "SourceSpec",
    "EntitySpec",
    "SilverConfig",
    "load_silver_config",
]

# Normaliser name -> the Spark type of the silver column it produces.
NORMALIZER_TYPES: dict[str, T.DataType] = {
    "id": T.StringType(),
    "text": T.StringType(),
    "lower": T.StringType(),
    "upper": T.StringType(),
    "email": T.StringType(),
    "phone": T.StringType(),
    "name": T.StringType(),
    "country": T.StringType(),
    "postcode": T.StringType(),
    "currency": T.StringType(),
    "amount": T.DecimalType(12, 2),
    "int": T.IntegerType(),
    "bool": T.BooleanType(),
    "date": T.DateType(),
    "timestamp": T.TimestampType(),
}
# Normalisers that reject values: a present raw value that normalises to null is flagged.
VALIDATING_NORMALIZERS = frozenset(
    {"email", "phone", "country", "currency", "amount", "int", "bool", "date", "timestamp"}
)

Normalizer = Literal[
    "id", "text", "lower", "upper", "email", "phone", "name", "country", "postcode", "currency",
    "amount", "int", "bool", "date", "timestamp",
]
Action = Literal["quarantine", "warn", "fail"]


class Expectation(StrictModel):
    """One data-quality rule on a silver column (null passes every rule but ``not_null``)."""

    name: str
    type: Literal["not_null", "regex", "range", "allowed_values", "referential"]
    column: str
    action: Action = "quarantine"
    pattern: str | None = None
    min: float | None = None
    max: float | None = None
    values: list[str | int | float | bool] | None = None
    ref_table: str | None = Field(default=None, description="layer.table, e.g. bronze.ref_products")
    ref_column: str | None = None

    @model_validator(mode="after")
    def _params(self) -> Expectation:
        needed = {
            "regex": ("pattern",),
            "allowed_values": ("values",),
            "referential": ("ref_table", "ref_column"),
        }.get(self.type, ())
        for attr in needed:
            if getattr(self, attr) is None:
                raise ValueError(f"rule {self.name!r} of type {self.type} needs {attr!r}")
        if self.type == "range" and self.min is None and self.max is None:
            raise ValueError(f"rule {self.name!r} of type range needs min and/or max")
        if self.type == "referential" and len(self.ref_table.split(".")) != 2:
            raise ValueError(f"rule {self.name!r}: ref_table must be layer.table")
        return self


class SourceSpec(StrictModel):
    """One bronze table feeding an entity."""

    bronze: str
    record_key: list[str] = Field(min_length=1)  # bronze expressions, joined with '|'
    prepare: Literal["explode_order_items", "pos_order_headers"] | None = None
    default_region: str | None = None  # ISO-2 for phones without a country code
    default_timezone: str = "UTC"  # zone of naive timestamps
    columns: dict[str, str]  # silver column -> Spark SQL expression over the bronze row

    @model_validator(mode="after")
    def _semantics(self) -> SourceSpec:
        if not iana_zone(self.default_timezone):
            raise ValueError(f"default_timezone {self.default_timezone!r} is not an IANA time zone")
        if self.default_region and self.default_region.upper() not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"default_region {self.default_region!r} is not an ISO-2 region")
        return self


class EntitySpec(StrictModel):
    table: str
    key: list[str] = Field(min_length=1)
    keep: Literal["latest", "first"]
    order_by: str | None = None
    columns: dict[str, Normalizer]
    sources: list[SourceSpec] = Field(min_length=1)
    expectations: list[Expectation] = Field(default_factory=list)

    @model_validator(mode="after")
    def _semantics(self) -> EntitySpec:
        for k in self.key:
            if k not in self.columns:
                raise ValueError(f"key column {k!r} is not in columns")
        if self.keep == "latest":
            if not self.order_by:
                raise ValueError("keep: latest needs order_by")
            if self.columns.get(self.order_by) not in ("timestamp", "date", "int", "amount"):
                raise ValueError(f"order_by {self.order_by!r} must be a timestamp/date/int/amount column")
        for rule in self.expectations:
            if rule.column not in self.columns:
                raise ValueError(f"expectation {rule.name!r}: column {rule.column!r} is not in columns")
        names = [r.name for r in self.expectations]
        if len(names) != len(set(names)):
            raise ValueError("expectation names must be unique")
        for src in self.sources:
            unknown = sorted(set(src.columns) - set(self.columns))
            if unknown:
                raise ValueError(f"source {src.bronze!r} maps unknown silver columns {unknown}")
        return self

    def schema(self) -> T.StructType:
        """The data columns of the silver table (without lineage columns)."""
        return T.StructType([T.StructField(c, NORMALIZER_TYPES[n], True) for c, n in self.columns.items()])


class SilverConfig(StrictModel):
    email_provider_rules: bool = False
    parallel: int = Field(default=2, ge=1, le=16)  # entities built at once (threads of one SparkSession)
    entities: dict[str, EntitySpec]

    @model_validator(mode="after")
    def _own_tables(self) -> SilverConfig:
        # Entities are built at once: two writing one table would race (and did not mean anything
        # sensible one after the other either: the second replaced or merged into the first's rows).
        seen: dict[str, str] = {}
        for name, entity in self.entities.items():
            for table in (entity.table, f"{entity.table}_quarantine"):
                if table in seen:
                    raise ValueError(f"entities {seen[table]!r} and {name!r} both write silver.{table}")
                seen[table] = name
        return self


def load_silver_config(conf_dir: Path | None = None) -> SilverConfig:
    """Load and validate ``conf/silver.yaml``."""
    return load_model(SilverConfig, "silver", conf_dir)
