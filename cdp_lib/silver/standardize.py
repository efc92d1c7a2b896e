"""Bronze rows of one source -> the entity's silver columns, normalised, with lineage and flags."""

from __future__ import annotations

from pyspark.errors import AnalysisException
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from cdp_lib.errors import ConfigError, SchemaContractError
from cdp_lib.silver import normalize as N
from cdp_lib.silver.prepare import PREPARE
from cdp_lib.silver.spec import NORMALIZER_TYPES, VALIDATING_NORMALIZERS, EntitySpec, SourceSpec

__all__ = ["LINEAGE_COLUMNS", "standardize"]

# Lineage columns every silver row carries (besides _row_hash and _run_id added when written).
LINEAGE_COLUMNS = ("_source", "_record_key", "_batch_id", "_ingested_at", "_dq_flags")
_REQUIRED_BRONZE = ("_batch_id", "_ingested_at")
_CONF_FILE = "conf/silver.yaml"


def _raw(c: str) -> str:
    return f"__raw_{c}"


def _bad_expression(key: str, source: SourceSpec, exc: AnalysisException) -> ConfigError:
    # The Spark condition names the problem (e.g. UNRESOLVED_COLUMN...) without row values.
    return ConfigError(_CONF_FILE, key, f"not valid over bronze.{source.bronze}: {exc.getCondition() or exc}")


def _project(df: DataFrame, entity_name: str, entity: EntitySpec, index: int, source: SourceSpec) -> DataFrame:
    """Select the mapped raw expressions; a bad expression is a ConfigError naming its key."""
    missing = [c for c in _REQUIRED_BRONZE if c not in df.columns]
    if missing:
        raise SchemaContractError(f"bronze.{source.bronze} lacks lineage column(s) {missing}")
    where = f"entities.{entity_name}.sources.{index}"
    exprs: list[Column] = []
    for col in entity.columns:
        text = source.columns.get(col)
        expr = F.expr(text) if text is not None else F.lit(None).cast("string")
        try:
            df.select(expr)
        except AnalysisException as exc:
            raise _bad_expression(f"{where}.columns.{col}", source, exc) from None
        exprs.append(expr.alias(_raw(col)))
    key_parts = []
    for i, text in enumerate(source.record_key):
        try:
            df.select(F.expr(text))
        except AnalysisException as exc:
            raise _bad_expression(f"{where}.record_key.{i}", source, exc) from None
        key_parts.append(F.coalesce(F.expr(text).cast("string"), F.lit("")))
    return df.select(
        *exprs,
        F.lit(source.bronze).alias("_source"),
        F.concat_ws("|", *key_parts).alias("_record_key"),
        F.col("_batch_id").cast("string").alias("_batch_id"),
        F.col("_ingested_at").cast("timestamp").alias("_ingested_at"),
    )


def _timestamp(raw: Column, dtype: T.DataType, tz: str) -> Column:
    if isinstance(dtype, T.TimestampType):
        return raw
    if isinstance(dtype, T.TimestampNTZType | T.DateType):
        # A wall clock without zone: read it in the source's zone.
        return N.to_utc_timestamp(raw.cast("timestamp_ntz").cast("string"), tz)
    return N.to_utc_timestamp(raw, tz)


def _normalise(norm: str, raw: Column, dtype: T.DataType, source: SourceSpec, country: Column | None) -> Column:
    numeric = isinstance(dtype, T.NumericType)
    if norm == "id":
        return N.normalize_id(raw)
    if norm == "text":
        return N.clean_string(raw)
    if norm == "lower":
        return F.lower(N.clean_string(raw))
    if norm == "upper":
        return F.upper(N.clean_string(raw))
    if norm == "email":
        return N.normalize_email(raw)
    if norm == "name":
        return N.normalize_name(raw)
    if norm == "country":
        return N.normalize_country(raw)
    if norm == "postcode":
        return N.normalize_postcode(raw, country)
    if norm == "currency":
        return N.normalize_currency(raw)
    if norm == "amount":
        return raw.try_cast("decimal(12,2)") if numeric else N.to_amount(raw)
    if norm == "int":
        return raw.try_cast("int") if numeric else N.to_int(raw)
    if norm == "bool":
        return raw if isinstance(dtype, T.BooleanType) else N.to_bool(raw)
    if norm == "date":
        if isinstance(dtype, T.DateType):
            return raw
        if isinstance(dtype, T.TimestampType | T.TimestampNTZType):
            return F.to_date(raw)
        return N.to_date(raw)
    if norm == "timestamp":
        return _timestamp(raw, dtype, source.default_timezone)
    raise ValueError(f"unknown normaliser {norm!r}")  # the config model prevents this


def _present(raw: Column, dtype: T.DataType) -> Column:
    if isinstance(dtype, T.StringType):
        return raw.isNotNull() & (F.trim(raw) != "")
    return raw.isNotNull()


def standardize(
    df: DataFrame, entity_name: str, entity: EntitySpec, index: int, *, email_provider_rules: bool = False
) -> DataFrame:
    """Bronze rows of ``entity.sources[index]`` as silver columns + ``_source``, ``_record_key``,
    ``_batch_id``, ``_ingested_at`` and ``_dq_flags`` (``<column>_invalid`` for present raw values
    a validating normaliser rejected)."""
    source = entity.sources[index]
    if source.prepare:
        df = PREPARE[source.prepare](df)
    projected = _project(df, entity_name, entity, index, source)
    types = {f.name: f.dataType for f in projected.schema.fields}
    cols = entity.columns
    country = None
    if cols.get("country") == "country":
        projected = projected.withColumn("country", N.normalize_country(F.col(_raw("country"))))
        country = F.col("country")
    out = projected
    for col, norm in cols.items():
        if col == "country" and country is not None:
            continue
        raw = F.col(_raw(col))
        if norm == "phone":
            region = F.lit(source.default_region).cast("string")
            if country is not None:
                region = F.coalesce(country, region)
            out = out.withColumn(col, N.phone_e164_column(raw, region))
        elif norm == "name":
            out = out.withColumn(col, N.nfc_column(N.normalize_name(raw)))
        else:
            value = _normalise(norm, raw, types[_raw(col)], source, country)
            if norm == "email" and email_provider_rules:
                value = N.canonicalize_email(value)
            out = out.withColumn(col, value)
    flags = [
        F.when(_present(F.col(_raw(c)), types[_raw(c)]) & F.col(c).isNull(), F.lit(f"{c}_invalid"))
        for c, n in cols.items() if n in VALIDATING_NORMALIZERS
    ]
    flag_col = F.array_compact(F.array(*flags)) if flags else F.array().cast("array<string>")
    return out.select(
        *[F.col(c).cast(NORMALIZER_TYPES[n]).alias(c) for c, n in cols.items()],
        "_source", "_record_key", "_batch_id", "_ingested_at",
        flag_col.alias("_dq_flags"),
    )
