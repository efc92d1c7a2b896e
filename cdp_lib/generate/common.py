"""Shared column helpers for the source generators: truth identifiers and timestamp text."""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

from cdp_lib.generate.noise import normalised_email
from cdp_lib.generate.vocab import CURRENCIES, JUNK_PHONES, TZ_OFFSETS

__all__ = ["ids", "email_id", "phone_id", "local_ts", "iso_utc", "currency_of", "by_country", "RECORD_COLUMNS"]

# Internal columns every source frame carries next to its landing columns.
RECORD_COLUMNS = ("_day", "_person_id", "_record_key", "_ids")
IDS_TYPE = "array<struct<id_type:string,id_value:string>>"


def by_country(values: dict, country: Column) -> Column:
    expr = None
    for code, v in values.items():
        v = v if isinstance(v, Column) else F.lit(v)
        expr = F.when(country == code, v) if expr is None else expr.when(country == code, v)
    return expr


def ids(*pairs: tuple[str, Column]) -> Column:
    """array<struct<id_type, id_value>> of the identifiers a record carries; null or empty
    values (fields left blank) are dropped by the truth (no per-row filter lambda here)."""
    if not pairs:
        return F.array().cast(IDS_TYPE)
    return F.array(*[F.struct(F.lit(t).alias("id_type"), v.cast("string").alias("id_value")) for t, v in pairs])


def email_id(raw: Column) -> Column:
    """Ground-truth form of a written email."""
    return normalised_email(raw)


def phone_id(raw: Column, e164: Column) -> Column:
    """Ground-truth form of a written phone: its E.164, or the junk value itself."""
    t = F.trim(raw)
    return F.when(raw.isNull() | (t == ""), F.lit(None).cast("string")) \
        .when(F.lower(t).isin(*JUNK_PHONES), F.lower(t)).otherwise(e164)


def local_ts(ts: Column, country: Column) -> Column:
    """``2026-03-29T01:30:00+01:00``: local wall time of the country with its fixed offset."""
    hours = by_country(TZ_OFFSETS, country)
    shifted = F.timestamp_seconds(F.unix_timestamp(ts) + hours * 3600)
    sign = F.when(hours < 0, F.lit("-")).otherwise(F.lit("+"))
    offset = F.concat(sign, F.lpad(F.abs(hours).cast("string"), 2, "0"), F.lit(":00"))
    return F.concat(F.date_format(shifted, "yyyy-MM-dd'T'HH:mm:ss"), offset)


def iso_utc(ts: Column) -> Column:
    """``2026-03-01T10:15:30.000Z``."""
    return F.date_format(ts, "yyyy-MM-dd'T'HH:mm:ss.SSS'Z'")


def currency_of(country: Column) -> Column:
    return by_country(CURRENCIES, country)
