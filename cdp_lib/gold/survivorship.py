"""Survivorship: pick each profile attribute among a customer's records by a YAML rule.

Rules (ties always fall through to the next criterion, ending on the value itself so the
pick is deterministic):

- ``source_priority``: the first candidate input in the declared list that has a value,
  then the most recent within it;
- ``most_recent``: the value observed last;
- ``most_frequent``: the value seen in most records, then the most recent;
- ``most_complete``: the candidate with most non-null columns of the group (for single
  attributes: the longest value), then the most recent.

A rule over several attributes (an address: street, city, postcode, country) takes all of
them from the same winning record, so a street is never paired with another record's city.
"""

from __future__ import annotations

from functools import reduce

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from cdp_lib.gold.config import AttributeRule, Candidate

__all__ = ["candidates", "survive", "collect_values"]


def _blank_to_null(c):
    return F.when(F.trim(c.cast("string")) != "", c)


def candidates(rule: AttributeRule, frames: dict[str, DataFrame], times: dict[str, str]) -> DataFrame:
    """Long frame: customer_id, priority, source, observed_at, v0..vn (one row per candidate record)."""
    # Every candidate is cast to the types of the first candidate's columns, so the union is typed.
    first = rule.candidates[0]
    types = [frames[first.input].schema[c].dataType for c in first.columns]
    parts = []
    for priority, cand in enumerate(rule.candidates):
        df = frames[cand.input]
        vals = [_blank_to_null(F.col(c)).cast(types[i]).alias(f"v{i}") for i, c in enumerate(cand.columns)]
        part = df.where(F.col("customer_id").isNotNull()).select(
            "customer_id",
            F.lit(priority).alias("priority"),
            F.lit(cand.input).alias("source"),
            F.col(times[cand.input]).cast("timestamp").alias("observed_at"),
            *vals,
        )
        parts.append(part)
    out = reduce(lambda a, b: a.unionByName(b), parts)
    width = len(rule.attributes)
    non_null = reduce(lambda a, b: a + b, [F.col(f"v{i}").isNotNull().cast("int") for i in range(width)])
    return out.where(non_null > 0).withColumn("_filled", non_null)


def survive(rule: AttributeRule, cands: DataFrame) -> DataFrame:
    """One row per customer: customer_id, the rule's attributes, and ``<first attribute>__source``."""
    width = len(rule.attributes)
    value_order = [F.col(f"v{i}").cast("string").asc_nulls_last() for i in range(width)]
    recent = F.col("observed_at").desc_nulls_last()
    if rule.rule == "source_priority":
        order = [F.col("priority").asc(), recent]
    elif rule.rule == "most_recent":
        order = [recent, F.col("priority").asc()]
    elif rule.rule == "most_frequent":
        counts = Window.partitionBy("customer_id", *[f"v{i}" for i in range(width)])
        cands = cands.withColumn("_freq", F.count(F.lit(1)).over(counts))
        order = [F.col("_freq").desc(), recent, F.col("priority").asc()]
    else:  # most_complete
        length = F.length(F.col("v0").cast("string")) if width == 1 else F.col("_filled")
        cands = cands.withColumn("_complete", length)
        order = [F.col("_complete").desc(), recent, F.col("priority").asc()]
    w = Window.partitionBy("customer_id").orderBy(*order, *value_order)
    best = cands.withColumn("_rank", F.row_number().over(w)).where("_rank = 1")
    return best.select(
        "customer_id",
        *[F.col(f"v{i}").alias(a) for i, a in enumerate(rule.attributes)],
        F.col("source").alias(f"{rule.attributes[0]}__source"),
    )


def collect_values(name: str, cands: list[Candidate], frames: dict[str, DataFrame]) -> DataFrame:
    """customer_id, ``name``: sorted distinct non-null values of the candidates' first column."""
    parts = [
        frames[c.input]
        .where(F.col("customer_id").isNotNull())
        .select("customer_id", _blank_to_null(F.col(c.columns[0])).cast("string").alias("v"))
        for c in cands
    ]
    # Distinct pairs first (a hash aggregate), then a list: a set collected over every candidate row
    # is an object aggregate, which sorts all its rows once a task holds more than 128 customers.
    union = reduce(lambda a, b: a.unionByName(b), parts).where(F.col("v").isNotNull()).distinct()
    return union.groupBy("customer_id").agg(F.sort_array(F.collect_list("v")).alias(name))
