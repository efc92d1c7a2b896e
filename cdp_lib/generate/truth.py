"""Ground truth, written apart from the landing zone (docs/landing.md, "Ground truth").

The truth is taken from the very rows a source wrote, never re-derived: from the staged
frame of a source (Parquet), or, for the JSON-lines sources, from side lines written in the
same pass as the landing lines (see :func:`side_lines`).
"""

from __future__ import annotations

from functools import reduce

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from cdp_lib.generate.vocab import JUNK_EMAILS, JUNK_PHONES

__all__ = ["record_rows", "identifier_rows", "side_lines", "read_side_records", "read_side_identifiers",
           "truth_records", "truth_identifiers", "truth_people", "JUNK_VALUES"]

# Normalised junk values: listed in truth with a null person_id (they belong to no one).
JUNK_VALUES = sorted({v.lower() for v in JUNK_EMAILS + JUNK_PHONES})
# Side lines are tab-separated; an identifier list is joined with the unit separator.
# Generated keys and identifiers never contain either (nor a line break).
_TAB, _UNIT = "\t", "\u001f"


def _source(source: str | Column) -> Column:
    return F.lit(source) if isinstance(source, str) else source


def record_rows(frame: DataFrame, source: str | Column) -> DataFrame:
    """``source, record_key, person_id`` of a source frame (internal ``_record_key``, ``_person_id``)."""
    return frame.select(_source(source).alias("source"), F.col("_record_key").alias("record_key"),
                        F.col("_person_id").cast("long").alias("person_id"))


def identifier_rows(frame: DataFrame) -> DataFrame:
    """``id_type, id_value, person_id`` of every entry of a source frame's ``_ids``."""
    return frame.select(F.explode("_ids").alias("i"), F.col("_person_id").cast("long").alias("person_id")) \
        .select(F.col("i.id_type").alias("id_type"), F.col("i.id_value").alias("id_value"), "person_id")


def side_lines(source: str | Column) -> dict[str, Column]:
    """Text lines carrying a row's truth, written next to its landing line (first copy only:
    a duplicate delivery is the same record with the same identifiers)."""
    first = F.col("_copy") == 0
    person = F.col("_person_id").cast("string")
    return {
        "records": F.when(first, F.concat_ws(_TAB, _source(source), F.col("_record_key"), person)),
        "identifiers": F.when(first, F.concat_ws(
            _TAB, person, F.array_join(F.col("_ids.id_type"), _UNIT),
            F.array_join(F.col("_ids.id_value"), _UNIT, ""))),
    }


def _lines(spark: SparkSession, path: str) -> Column:
    return spark.read.option("recursiveFileLookup", "true").text(path)


def read_side_records(spark: SparkSession, path: str) -> DataFrame:
    parts = F.split(F.col("value"), _TAB)
    return _lines(spark, path).select(parts[0].alias("source"), parts[1].alias("record_key"),
                                      parts[2].cast("long").alias("person_id"))


def read_side_identifiers(spark: SparkSession, path: str) -> DataFrame:
    parts = F.split(F.col("value"), _TAB)
    pairs = F.arrays_zip(F.split(parts[1], _UNIT).alias("id_type"), F.split(parts[2], _UNIT).alias("id_value"))
    return _lines(spark, path).select(F.explode(pairs).alias("i"), parts[0].cast("long").alias("person_id")) \
        .select("i.id_type", "i.id_value", "person_id")


def _union(rows: list[DataFrame]) -> DataFrame:
    return reduce(DataFrame.unionByName, rows)


def truth_records(rows: list[DataFrame], unique: list[DataFrame] = ()) -> DataFrame:
    """``source, record_key, person_id`` of every generated record (duplicate copies once).

    ``unique``: rows already free of duplicates (first copies of uniquely keyed records),
    added without the de-duplicating shuffle.
    """
    out = _union(rows).distinct()
    return _union([out, *unique]) if unique else out


def truth_identifiers(rows: list[DataFrame]) -> DataFrame:
    """``id_type, id_value, person_id`` of every identifier written anywhere, normalised.

    A junk value is listed once per type with a null person_id. A genuine value shared by
    several people (a household phone, a typo that hits another person's email) is listed
    once per owner. Empty identifiers (a field left blank) are not identifiers.
    """
    value = F.col("id_value")
    out = _union(rows).where(value.isNotNull() & (value != ""))
    return out.select(
        "id_type", "id_value",
        F.when(value.isin(*JUNK_VALUES), F.lit(None).cast("long")).otherwise(F.col("person_id")).alias("person_id"),
    ).distinct()


def truth_people(people: DataFrame) -> DataFrame:
    return people.select("person_id", "household_id", "first_name", "last_name", "birth_date", "postcode", "country")
