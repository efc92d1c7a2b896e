"""Firing due carts into ``gold.trigger_events`` and delivering them to the trigger's sinks.

``gold.trigger_events`` holds at most one row per (trigger, customer, cart): rows are inserted
with a MERGE that only inserts absent keys, so a replayed batch or tick never fires twice.
Consent is read from ``gold.customer_profile`` (``consent_<channel>`` must be true; a customer
without a profile counts as not consented unless ``missing_profile_consent: true``). Carts whose
customer is still unknown when due are closed as ``anonymous``, not consented ones as
``no_consent``; neither gets a trigger row.

Delivery state is ``delivered_at``: rows without it are (re)delivered at every batch or tick,
grouped by ``delivery_id``, and stamped once every sink of the trigger accepted them.
"""

from __future__ import annotations

import logging
from datetime import datetime

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from cdp_lib.config import S3Settings
from cdp_lib.errors import TriggerDeliveryError
from cdp_lib.lakehouse import Lakehouse
from cdp_lib.streaming.carts import due_carts, set_status
from cdp_lib.streaming.config import CartTrigger
from cdp_lib.streaming.sinks import deliver_drop, deliver_webhook, drop_store

__all__ = ["EVENTS_TABLE", "EVENTS_SCHEMA", "with_consent", "fire_due", "deliver_pending"]

log = logging.getLogger(__name__)

EVENTS_TABLE = "trigger_events"
EVENTS_SCHEMA = T.StructType(
    [
        T.StructField("trigger", T.StringType(), False),
        T.StructField("customer_id", T.StringType(), False),
        T.StructField("cart_id", T.StringType(), False),
        T.StructField("fired_at", T.TimestampType(), False),
        T.StructField("event_ts", T.TimestampType(), False),  # the cart's last start event
        T.StructField("batch_id", T.LongType(), True),  # the micro-batch that fired it (null: a timer tick)
        T.StructField("run_id", T.StringType(), False),
        T.StructField("delivery_id", T.StringType(), False),
        T.StructField("delivered_at", T.TimestampType(), True),
    ]
)


def with_consent(carts: DataFrame, profile: DataFrame | None, trigger: CartTrigger) -> DataFrame:
    """Add ``decision``: fire | no_consent | anonymous, from the profile's consent column."""
    if trigger.consent == "none":
        consented = F.lit(True)
        joined = carts
    else:
        column = f"consent_{trigger.consent}"
        if profile is None:
            joined = carts.withColumn("_consent", F.lit(None).cast("boolean")).withColumn("_has", F.lit(False))
        else:
            joined = carts.join(
                profile.select("customer_id", F.col(column).alias("_consent"), F.lit(True).alias("_has")),
                "customer_id", "left")
        consented = F.when(F.col("_has").isNull() | ~F.col("_has"), F.lit(trigger.missing_profile_consent)).otherwise(
            F.coalesce(F.col("_consent"), F.lit(False)))
    return joined.withColumn(
        "decision",
        F.when(F.col("customer_id").isNull(), "anonymous").when(consented, "fire").otherwise("no_consent"),
    ).drop("_consent", "_has")


def _events_table(spark: SparkSession, lakehouse: Lakehouse) -> DeltaTable:
    path = lakehouse.path("gold", EVENTS_TABLE)
    if not lakehouse.exists("gold", EVENTS_TABLE):
        spark.createDataFrame([], EVENTS_SCHEMA).write.format("delta").mode("ignore").save(path)
    return DeltaTable.forPath(spark, path)


def fire_due(spark: SparkSession, lakehouse: Lakehouse, trigger: CartTrigger, now: datetime,
             batch_id: int | None, run_id: str, delivery_id: str) -> dict[str, int]:
    """Fire every due cart of ``trigger`` (MERGE insert-if-absent), then close the due carts."""
    table = _events_table(spark, lakehouse)  # exists from the first batch on, even before anything fires
    profile = lakehouse.read("gold", "customer_profile") if lakehouse.exists("gold", "customer_profile") else None
    decided = with_consent(due_carts(spark, lakehouse, trigger, now), profile, trigger).persist()
    try:
        by_decision = decided.groupBy("decision").agg(F.count(F.lit(1)).alias("n")).collect()
        counts = {r["decision"]: r["n"] for r in by_decision}
        if not counts:
            return {}
        rows = decided.where(F.col("decision") == "fire").select(
            "trigger", "customer_id", "cart_id",
            F.lit(now).cast("timestamp").alias("fired_at"),
            F.col("last_start_ts").alias("event_ts"),
            F.lit(batch_id).cast("long").alias("batch_id"),
            F.lit(run_id).alias("run_id"),
            F.lit(delivery_id).alias("delivery_id"),
            F.lit(None).cast("timestamp").alias("delivered_at"),
        )
        if counts.get("fire"):
            (
                table.alias("t")
                .merge(rows.alias("s"),
                       "t.trigger = s.trigger and t.customer_id = s.customer_id and t.cart_id = s.cart_id")
                .whenNotMatchedInsertAll()
                .execute()
            )
        status = F.when(F.col("decision") == "fire", "fired").otherwise(F.col("decision"))
        set_status(spark, lakehouse, decided.select("trigger", "cart_id", status.alias("status")), now)
        return counts
    finally:
        decided.unpersist()


def deliver_pending(spark: SparkSession, lakehouse: Lakehouse, trigger: CartTrigger, s3_defaults: S3Settings,
                    now: datetime) -> dict[str, int]:
    """Deliver every undelivered trigger row to the trigger's sinks; a failure is logged and retried later."""
    if not lakehouse.exists("gold", EVENTS_TABLE):
        return {"delivered": 0, "failed": 0}
    table = _events_table(spark, lakehouse)
    pending = [r.asDict() for r in table.toDF().where(
        (F.col("trigger") == trigger.name) & F.col("delivered_at").isNull()).collect()]
    groups: dict[str, list[dict]] = {}
    for row in pending:
        groups.setdefault(row["delivery_id"], []).append(row)
    done, failed = [], 0
    sinks = trigger.sinks
    for delivery_id, rows in sorted(groups.items()):
        try:
            if sinks.drop is not None:
                store, prefix = drop_store(sinks.drop, s3_defaults)
                deliver_drop(store, prefix, trigger.name, delivery_id, rows)
            if sinks.webhook is not None and sinks.webhook.url:
                deliver_webhook(sinks.webhook, trigger.name, delivery_id, rows)
            done.append(delivery_id)
        except TriggerDeliveryError as exc:
            failed += 1
            log.warning("trigger %s delivery %s failed, will retry: %s", trigger.name, delivery_id, exc)
        except Exception as exc:  # noqa: BLE001 - an object store error must not stop the stream
            failed += 1
            log.warning("trigger %s delivery %s failed, will retry: %s", trigger.name, delivery_id,
                        type(exc).__name__)
    if done:
        ids = spark.createDataFrame([(d,) for d in done], "delivery_id string")
        (
            table.alias("t")
            .merge(ids.alias("s"), f"t.trigger = '{trigger.name}' and t.delivery_id = s.delivery_id "
                                   "and t.delivered_at is null")
            .whenMatchedUpdate(set={"delivered_at": F.lit(now).cast("timestamp")})
            .execute()
        )
    return {"delivered": sum(len(groups[d]) for d in done), "failed": failed}
