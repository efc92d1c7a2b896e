"""Destinations: where and how a segment's audience is dropped (``conf/destinations.yaml``).

::

    destinations:
      - name: meta_ads
        uri: s3a://activation/drops        # or a local folder
        format: csv                        # csv | parquet | jsonl
        mode: incremental                  # full | incremental (adds and removes, column `action`)
        consent: ads                       # email | sms | ads | none: only customers opted in
        segments: [cart_abandoners]
        fields:
          - {source: customer_id, name: external_id}
          - {source: email, name: email_sha256, pii: sha256_email}
          - {source: phone, name: phone_sha256, pii: sha256_phone}
        max_rows_per_file: 100000
        s3: {endpoint: "${CDP_S3_ENDPOINT:-}", path_style_access: true}

Personal-data columns (email, phone, names, address parts, birth date) must say what
happens to them (``pii``): ``sha256_email`` / ``sha256_phone`` hash the normalised value
the way ad platforms match it (email trimmed and lower-cased; phone in E.164), ``drop``
leaves the field out, ``plain`` sends it as is (a deliberate choice, written down).
Credentials are never configured here: the ``s3`` block has no key for them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from cdp_lib.config import StrictModel, default_conf_dir, load_model
from cdp_lib.errors import ConfigError

__all__ = [
    "PII_COLUMNS",
    "S3Options",
    "FieldSpec",
    "Destination",
    "DestinationsConfig",
    "load_destinations",
    "validate_destinations",
    "normalized_email",
    "normalized_phone",
    "sha256_hex",
    "shape_fields",
    "consent_column",
]

NAME = r"^[a-z][a-z0-9_]*$"
PII_COLUMNS = frozenset(
    {"email", "phone", "first_name", "last_name", "street", "city", "postcode", "birth_date", "address"}
)
_SECRET_WORDS = ("access.key", "secret.key", "session.token", "security.credential", "encryption.key", "password")


class S3Options(StrictModel):
    """Per-destination S3 settings; unset values fall back to the environment's ``s3`` block."""

    endpoint: str | None = None
    region: str | None = None
    path_style_access: bool | None = None
    ssl_enabled: bool | None = None
    # boto3 (manifest, _SUCCESS, checksums) timeouts and attempts.
    connect_timeout_s: float = Field(default=10, gt=0)
    read_timeout_s: float = Field(default=60, gt=0)
    max_attempts: int = Field(default=5, ge=1)
    # Further s3a settings for this bucket (retries, timeouts, committers): fs.s3a.* keys only.
    hadoop: dict[str, str | int | float | bool] = Field(default_factory=dict)

    @field_validator("endpoint")
    @classmethod
    def _blank_is_none(cls, v: str | None) -> str | None:
        return v or None

    @field_validator("hadoop")
    @classmethod
    def _hadoop_keys(cls, v: dict) -> dict:
        for key in v:
            if not key.startswith("fs.s3a."):
                raise ValueError(f"{key!r}: only fs.s3a.* settings belong here")
            if any(word in key for word in _SECRET_WORDS):
                raise ValueError(f"{key!r}: credentials never live in YAML (use the environment or AWS provider chain)")
        return v


class FieldSpec(StrictModel):
    source: str = Field(min_length=1)
    name: str | None = None
    pii: Literal["sha256_email", "sha256_phone", "drop", "plain"] | None = None

    @property
    def output(self) -> str:
        return self.name or self.source


class Destination(StrictModel):
    name: str = Field(pattern=NAME)
    uri: str = Field(min_length=1)
    format: Literal["csv", "parquet", "jsonl"]
    mode: Literal["full", "incremental"] = "full"
    consent: Literal["email", "sms", "ads", "none"]
    segments: list[str] = Field(min_length=1)
    fields: list[FieldSpec] = Field(min_length=1)
    max_rows_per_file: int | None = Field(default=None, ge=1)
    partitions: int = Field(default=1, ge=1)
    s3: S3Options = Field(default_factory=S3Options)

    @field_validator("uri")
    @classmethod
    def _uri(cls, v: str) -> str:
        if "://" in v and not v.startswith(("s3a://", "file://")):
            raise ValueError("use s3a://bucket/prefix or a local path")
        if v.startswith("s3a://") and not v[len("s3a://"):].split("/")[0]:
            raise ValueError("s3a:// URI has no bucket")
        return v

    @model_validator(mode="after")
    def _fields(self) -> Destination:
        outputs: set[str] = set()
        for f in self.fields:
            if f.source in PII_COLUMNS and f.pii is None:
                raise ValueError(
                    f"field {f.source!r} is personal data: set pii to sha256_email, sha256_phone, drop or plain"
                )
            if f.pii == "drop":
                continue
            if f.output in outputs:
                raise ValueError(f"output field {f.output!r} appears twice")
            if f.output == "action" and self.mode == "incremental":
                raise ValueError("output field 'action' is reserved in incremental mode")
            outputs.add(f.output)
        if not outputs:
            raise ValueError("every field is dropped: nothing to export")
        return self

    @property
    def is_s3(self) -> bool:
        return self.uri.startswith("s3a://")


class DestinationsConfig(StrictModel):
    destinations: list[Destination] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> DestinationsConfig:
        names = [d.name for d in self.destinations]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"destination {sorted(dup)[0]!r} is defined twice")
        return self


def validate_destinations(config: DestinationsConfig, segment_names: list[str], profile_schema: T.StructType,
                          file: str = "destinations.yaml") -> None:
    """Cross-check destinations against the segments and the profile columns."""
    columns = set(profile_schema.fieldNames())
    for i, dest in enumerate(config.destinations):
        for j, seg in enumerate(dest.segments):
            if seg not in segment_names:
                known = ", ".join(segment_names)
                raise ConfigError(file, f"destinations.{i}.segments.{j}",
                                  f"destination {dest.name!r}: unknown segment {seg!r}; known: {known}")
        for j, f in enumerate(dest.fields):
            if f.source not in columns:
                raise ConfigError(file, f"destinations.{i}.fields.{j}.source",
                                  f"destination {dest.name!r}: {f.source!r} is not a gold.customer_profile column")
        if dest.consent != "none" and f"consent_{dest.consent}" not in columns:
            raise ConfigError(file, f"destinations.{i}.consent",
                              f"destination {dest.name!r}: the profile has no consent_{dest.consent} column")


def load_destinations(segment_names: list[str], profile_schema: T.StructType,
                      conf_dir: Path | None = None) -> DestinationsConfig:
    conf = Path(conf_dir or default_conf_dir())
    config = load_model(DestinationsConfig, "destinations", conf)
    validate_destinations(config, segment_names, profile_schema, str(conf / "destinations.yaml"))
    return config


def normalized_email(col: Column) -> Column:
    """Trimmed, lower-cased; blank -> null."""
    v = F.lower(F.trim(col))
    return F.when(v != "", v)


def normalized_phone(col: Column) -> Column:
    """E.164 (``+`` and 8-15 digits) after removing spaces and punctuation; anything else -> null."""
    v = F.regexp_replace(F.trim(col), r"[\s().\-]", "")
    return F.when(v.rlike(r"^\+[1-9][0-9]{7,14}$"), v)


def sha256_hex(col: Column) -> Column:
    """Lower-case hex SHA-256 of the UTF-8 string; null stays null."""
    return F.sha2(col, 256)


def consent_column(channel: str) -> Column:
    """True only for an explicit opt-in: null means unknown, which is not consent."""
    if channel == "none":
        return F.lit(True)
    return F.coalesce(F.col(f"consent_{channel}"), F.lit(False))


def shape_fields(df: DataFrame, dest: Destination) -> DataFrame:
    """Select, hash and rename the destination's fields (``action`` kept first when present)."""
    cols: list[Column] = []
    if "action" in df.columns and dest.mode == "incremental":
        cols.append(F.col("action"))
    for f in dest.fields:
        src = F.col(f.source)
        if f.pii == "drop":
            continue
        if f.pii == "sha256_email":
            src = sha256_hex(normalized_email(src.cast("string")))
        elif f.pii == "sha256_phone":
            src = sha256_hex(normalized_phone(src.cast("string")))
        cols.append(src.alias(f.output))
    return df.select(*cols)
