"""Enrichment: reference data (postcode -> region, coordinates) and a third-party file keyed
by the SHA-256 of the normalised email. ``enriched_attributes`` lists what came from where."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

__all__ = ["with_postcode_reference", "with_third_party"]


def _norm_postcode(c):
    return F.upper(F.regexp_replace(F.trim(c), r"\s+", ""))


def with_postcode_reference(profile: DataFrame, postcodes: DataFrame) -> DataFrame:
    """Add region, latitude, longitude from the postcode reference (matched ignoring spaces/case)."""
    ref = postcodes.select(
        _norm_postcode(F.col("postcode")).alias("_pc"),
        F.col("region").alias("region"),
        F.col("latitude").cast("double").alias("latitude"),
        F.col("longitude").cast("double").alias("longitude"),
    ).dropDuplicates(["_pc"])
    out = profile.withColumn("_pc", _norm_postcode(F.col("postcode"))).join(F.broadcast(ref), "_pc", "left")
    tag = F.when(
        F.col("region").isNotNull(),
        F.array(F.lit("region:ref_postcodes"), F.lit("latitude:ref_postcodes"), F.lit("longitude:ref_postcodes")),
    )
    return out.drop("_pc").withColumn("enriched_attributes", F.coalesce(tag, F.array().cast("array<string>")))


def with_third_party(profile: DataFrame, third_party: DataFrame, columns: list[str], label: str) -> DataFrame:
    """Join third-party attributes on sha256(lower(trim(email))); provenance appended to enriched_attributes."""
    ref = third_party.select(F.lower(F.col("email_sha256")).alias("_h"), *[F.col(c).alias(f"_tp_{c}") for c in columns])
    ref = ref.dropDuplicates(["_h"])
    out = profile.withColumn("_h", F.sha2(F.lower(F.trim(F.col("email"))), 256)).join(ref, "_h", "left")
    for c in columns:
        out = out.withColumn(c, F.col(f"_tp_{c}")).withColumn(
            "enriched_attributes",
            F.when(
                F.col(f"_tp_{c}").isNotNull(), F.array_append("enriched_attributes", F.lit(f"{c}:{label}"))
            ).otherwise(F.col("enriched_attributes")),
        )
    return out.drop("_h", *[f"_tp_{c}" for c in columns])
