"""Attach gold inputs to customers through gold.identity_map."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from cdp_lib.gold.config import GoldInput

__all__ = ["ROW_KEY", "identifier_customers", "with_customer_id"]

ROW_KEY = "_gold_row_key"


def with_customer_id(df: DataFrame, inp: GoldInput, identity_map: DataFrame, broadcast: bool = False) -> DataFrame:
    """Add ``customer_id``: the customer of the row's first identifier (in declared order) found in the map.

    Rows none of whose identifiers is mapped get a null ``customer_id``. With ``broadcast`` (the
    caller found the map small enough to ship to every task) each identifier column is looked up
    with a broadcast hash join: no shuffle of ``df`` at all. Otherwise each row is keyed by a hash
    of all its columns, so the lookup is one explode + one join whatever the number of identifier
    columns, and one join back to the rows. Both give the same customer for every row.
    """
    df = df.where(inp.where) if inp.where else df
    if broadcast:
        return _broadcast_lookup(df, inp, identity_map)
    df = df.withColumn(ROW_KEY, F.xxhash64(*[F.col(f"`{c}`") for c in df.columns]))
    exploded = df.select(ROW_KEY, F.inline(_identifiers(inp))).where(F.col("id_value").isNotNull())
    resolved = (
        exploded.join(identity_map.select("id_type", "id_value", "customer_id"), ["id_type", "id_value"])
        .groupBy(ROW_KEY)
        .agg(F.min_by("customer_id", "priority").alias("customer_id"))
    )
    return df.join(resolved, ROW_KEY, "left")


def identifier_customers(df: DataFrame, inp: GoldInput, identity_map: DataFrame, broadcast: bool = False) -> DataFrame:
    """``customer_id``: every customer that any identifier of any row of ``df`` maps to (with repeats).

    A superset of the rows' customers by :func:`with_customer_id`, under this map and under any map
    that differs from it only in rows whose customers are listed too: an incremental run recomputes
    these when a row's identifiers change owner, the row may move between any two of them.
    """
    df = df.where(inp.where) if inp.where else df
    exploded = df.select(F.inline(_identifiers(inp))).where(F.col("id_value").isNotNull())
    ids = identity_map.select("id_type", "id_value", "customer_id")
    return exploded.join(F.broadcast(ids) if broadcast else ids, ["id_type", "id_value"]).select("customer_id")


def _identifiers(inp: GoldInput):
    """An array of (priority, id_type, id_value) structs: the row's identifiers in declared order."""
    return F.array(
        *[
            F.struct(
                F.lit(i).alias("priority"), F.lit(t).alias("id_type"), F.col(f"`{c}`").cast("string").alias("id_value")
            )
            for i, (t, c) in enumerate(inp.identifiers.items())
        ]
    )


def _broadcast_lookup(df: DataFrame, inp: GoldInput, identity_map: DataFrame) -> DataFrame:
    # identity_map is unique on (id_type, id_value): each lookup matches at most one row.
    found = []
    for i, (id_type, column) in enumerate(inp.identifiers.items()):
        value, cid = f"_gold_v{i}", f"_gold_c{i}"
        ids = identity_map.where(F.col("id_type") == id_type).select(
            F.col("id_value").alias(value), F.col("customer_id").alias(cid))
        df = df.join(F.broadcast(ids), F.col(f"`{column}`").cast("string") == F.col(value), "left").drop(value)
        found.append(cid)
    return df.withColumn("customer_id", F.coalesce(*[F.col(c) for c in found])).drop(*found)
