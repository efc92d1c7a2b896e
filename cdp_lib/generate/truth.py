"""Ground truth, written apart from the landing zone (docs/landing.md, "Ground truth")."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from cdp_lib.generate.vocab import JUNK_EMAILS, JUNK_PHONES

__all__ = ["truth_records", "truth_identifiers", "truth_people", "JUNK_VALUES"]

# Normalised junk values: listed in truth with a null person_id (they belong to no one).
JUNK_VALUES = sorted({v.lower() for v in JUNK_EMAILS + JUNK_PHONES})


def truth_records(frames: dict[str, DataFrame]) -> DataFrame:
    """``source, record_key, person_id`` of every generated record (duplicate copies once)."""
    parts = [f.select(F.lit(src).alias("source"), F.col("_record_key").alias("record_key"),
                      F.col("_person_id").alias("person_id")) for src, f in frames.items()]
    out = parts[0]
    for p in parts[1:]:
        out = out.unionByName(p)
    return out.distinct()


def truth_identifiers(frames: dict[str, DataFrame]) -> DataFrame:
    """``id_type, id_value, person_id`` of every identifier written anywhere, normalised.

    A junk value is listed once per type with a null person_id. A genuine value shared by
    several people (a household phone, a typo that hits another person's email) is listed
    once per owner.
    """
    parts = [f.select(F.explode("_ids").alias("i"), F.col("_person_id").alias("person_id")) for f in frames.values()]
    out = parts[0]
    for p in parts[1:]:
        out = out.unionByName(p)
    junk = F.col("i.id_value").isin(*JUNK_VALUES)
    return out.select(
        F.col("i.id_type").alias("id_type"), F.col("i.id_value").alias("id_value"),
        F.when(junk, F.lit(None).cast("long")).otherwise(F.col("person_id")).alias("person_id"),
    ).distinct()


def truth_people(people: DataFrame) -> DataFrame:
    return people.select("person_id", "household_id", "first_name", "last_name", "birth_date", "postcode", "country")
