"""Cart state for the abandonment trigger: ``ops.trigger_cart_state``, one row per trigger and cart.

Event-time semantics with a watermark: ``watermark = now - trigger.watermark``. An event older
than the watermark is too late to change a cart (it stays in bronze). A cart is *due* when its
deadline (last start event + ``delay``) is at or before the watermark and no completion was seen:
every event that could still cancel it would be too late by then.

Every update is monotone (earliest first start, latest last start, latest completion, customer
filled in once known), so replaying a micro-batch leaves the state as it was.
"""

from __future__ import annotations

from datetime import datetime

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from cdp_lib.lakehouse import Lakehouse
from cdp_lib.streaming.config import CartTrigger

__all__ = ["STATE_TABLE", "STATE_SCHEMA", "cart_events", "cart_updates", "completions_by_customer",
           "apply_cart_events", "due_carts", "set_status"]

STATE_TABLE = "trigger_cart_state"
STATE_SCHEMA = T.StructType(
    [
        T.StructField("trigger", T.StringType(), False),
        T.StructField("cart_id", T.StringType(), False),
        T.StructField("customer_id", T.StringType(), True),
        T.StructField("first_start_ts", T.TimestampType(), True),
        T.StructField("last_start_ts", T.TimestampType(), True),
        T.StructField("completed_ts", T.TimestampType(), True),
        T.StructField("status", T.StringType(), False),  # open | fired | no_consent | anonymous
        T.StructField("updated_at", T.TimestampType(), False),
    ]
)

def cart_events(events: DataFrame, trigger: CartTrigger, watermark: datetime) -> DataFrame:
    """(cart_id, customer_id, event_ts, is_start) of the trigger's events no older than ``watermark``."""
    return (
        events.where(F.col("type") == "track")
        .where(F.col("event").isin(*trigger.start_events, *trigger.complete_events))
        .where(F.col("timestamp") >= F.lit(watermark).cast("timestamp"))
        .select(
            F.trim(F.col("properties").getItem(trigger.cart_key)).alias("cart_id"),
            "customer_id",
            F.col("timestamp").alias("event_ts"),
            F.col("event").isin(*trigger.start_events).alias("is_start"),
        )
    )

def cart_updates(carts: DataFrame, trigger: CartTrigger, now: datetime) -> DataFrame:
    """One row per cart id (rows of :data:`STATE_SCHEMA`, status open) from :func:`cart_events`."""
    start_ts = F.when(F.col("is_start"), F.col("event_ts"))
    return (
        carts.where(F.col("cart_id").isNotNull() & (F.col("cart_id") != ""))
        .groupBy("cart_id")
        .agg(
            F.max_by("customer_id", F.when(F.col("customer_id").isNotNull(), F.col("event_ts"))).alias("customer_id"),
            F.min(start_ts).alias("first_start_ts"),
            F.max(start_ts).alias("last_start_ts"),
            F.max(F.when(~F.col("is_start"), F.col("event_ts"))).alias("completed_ts"),
        )
        .select(F.lit(trigger.name).alias("trigger"), "cart_id", "customer_id", "first_start_ts", "last_start_ts",
                "completed_ts", F.lit("open").alias("status"), F.lit(now).cast("timestamp").alias("updated_at"))
    )

def completions_by_customer(carts: DataFrame) -> DataFrame:
    """(customer_id, completed_ts): completions without a cart id close the customer's earlier carts."""
    return (
        carts.where(~F.col("is_start") & F.col("customer_id").isNotNull()
                    & (F.col("cart_id").isNull() | (F.col("cart_id") == "")))
        .groupBy("customer_id").agg(F.max("event_ts").alias("completed_ts"))
    )

def _state(spark: SparkSession, lakehouse: Lakehouse) -> DeltaTable:
    path = lakehouse.path("ops", STATE_TABLE)
    if not lakehouse.exists("ops", STATE_TABLE):
        spark.createDataFrame([], STATE_SCHEMA).write.format("delta").mode("ignore").save(path)
    return DeltaTable.forPath(spark, path)

def apply_cart_events(spark: SparkSession, lakehouse: Lakehouse, events: DataFrame, trigger: CartTrigger,
                      now: datetime) -> None:
    """MERGE a micro-batch's cart events into the state table (monotone, hence idempotent)."""
    watermark = now - trigger.watermark_td
    carts = cart_events(events, trigger, watermark).persist()
    try:
        state = _state(spark, lakehouse)
        (
            state.alias("t")
            .merge(cart_updates(carts, trigger, now).alias("s"), "t.trigger = s.trigger and t.cart_id = s.cart_id")
            .whenMatchedUpdate(set={
                "customer_id": "coalesce(s.customer_id, t.customer_id)",
                "first_start_ts": "least(t.first_start_ts, s.first_start_ts)",
                "last_start_ts": "greatest(t.last_start_ts, s.last_start_ts)",
                "completed_ts": "greatest(t.completed_ts, s.completed_ts)",
                "updated_at": "s.updated_at",
            })
            .whenNotMatchedInsertAll()
            .execute()
        )
        by_customer = completions_by_customer(carts)
        if by_customer.take(1):
            (
                state.alias("t")
                .merge(by_customer.alias("s"),
                       f"t.trigger = '{trigger.name}' and t.customer_id = s.customer_id and t.status = 'open' "
                       "and t.last_start_ts <= s.completed_ts")
                .whenMatchedUpdate(set={"completed_ts": "greatest(t.completed_ts, s.completed_ts)",
                                        "updated_at": F.lit(now).cast("timestamp")})
                .execute()
            )
    finally:
        carts.unpersist()

def due_carts(spark: SparkSession, lakehouse: Lakehouse, trigger: CartTrigger, now: datetime) -> DataFrame:
    """Open, never completed carts whose deadline (last start + delay) is at or before the watermark."""
    cutoff = now - trigger.watermark_td - trigger.delay_td
    return (
        _state(spark, lakehouse).toDF()
        .where((F.col("trigger") == trigger.name) & (F.col("status") == "open") & F.col("completed_ts").isNull())
        .where(F.col("last_start_ts") <= F.lit(cutoff).cast("timestamp"))
    )

def set_status(spark: SparkSession, lakehouse: Lakehouse, decided: DataFrame, now: datetime) -> None:
    """Close carts: ``decided`` has (trigger, cart_id, status); only open carts change."""
    (
        _state(spark, lakehouse).alias("t")
        .merge(decided.alias("s"), "t.trigger = s.trigger and t.cart_id = s.cart_id and t.status = 'open'")
        .whenMatchedUpdate(set={"status": "s.status", "updated_at": F.lit(now).cast("timestamp")})
        .execute()
    )
