"""Consent state per channel: the latest consent event per customer and channel wins."""

from __future__ import annotations

from functools import reduce

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from cdp_lib.gold.config import ConsentSettings

__all__ = ["consent_state"]


def _granted(c):
    # Booleans pass through; strings opt_in / opt_out (also yes/no, true/false, subscribed).
    s = F.lower(F.trim(c.cast("string")))
    return F.when(s.isin("true", "opt_in", "optin", "yes", "y", "1", "subscribed"), F.lit(True)).when(
        s.isin("false", "opt_out", "optout", "no", "n", "0", "unsubscribed"), F.lit(False)
    )


def consent_state(settings: ConsentSettings, frames: dict[str, DataFrame]) -> DataFrame | None:
    """customer_id + consent_<channel> (bool), consent_<channel>_at, consent_<channel>_source.

    Ties at the same instant resolve to opt-out: when in doubt, do not contact.
    """
    events = []
    for src in settings.sources:
        df = frames[src.input].where(F.col("customer_id").isNotNull())
        channel = F.lit(src.channel) if src.channel else F.lower(F.col(src.channel_column))
        label = F.lit(src.source_label) if src.source_label else F.col(src.source_column).cast("string")
        events.append(
            df.select(
                "customer_id",
                channel.alias("channel"),
                _granted(F.col(src.status_column)).alias("granted"),
                F.col(src.time_column).cast("timestamp").alias("at"),
                label.alias("source"),
            )
        )
    if not events:
        return None
    all_events = reduce(lambda a, b: a.unionByName(b), events).where(
        F.col("granted").isNotNull() & F.col("at").isNotNull() & F.col("channel").isin(settings.channels)
    )
    w = Window.partitionBy("customer_id", "channel").orderBy(F.desc("at"), F.asc("granted"), F.asc("source"))
    latest = all_events.withColumn("_r", F.row_number().over(w)).where("_r = 1")
    aggs = []
    for ch in settings.channels:
        is_ch = F.col("channel") == ch
        aggs += [
            F.max(F.when(is_ch, F.col("granted").cast("int"))).cast("boolean").alias(f"consent_{ch}"),
            F.max(F.when(is_ch, F.col("at"))).alias(f"consent_{ch}_at"),
            F.max(F.when(is_ch, F.col("source"))).alias(f"consent_{ch}_source"),
        ]
    return latest.groupBy("customer_id").agg(*aggs)
