"""Live identity stitching: event identifiers -> customer ids, within the micro-batch.

Lookup = ``gold.identity_map`` (the batch resolution's answer wins) plus
``gold.identity_live_links``: anonymous ids (cookie, device, alias ``previousId``) that an
``identify``/``alias`` event tied to a known identifier (``userId`` as crm id, ``traits.email``)
since the last identity run. Links of a micro-batch are merged *before* its events are resolved,
so a ``track`` after an ``identify`` in the same batch (or any later one) finds its customer.
"""

from __future__ import annotations

from datetime import datetime

from delta.tables import DeltaTable
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from cdp_lib.lakehouse import Lakehouse

__all__ = [
    "LINKS_TABLE",
    "LINKS_SCHEMA",
    "RESOLUTION_ORDER",
    "event_identifiers",
    "identity_lookup",
    "new_links",
    "merge_links",
    "with_customer_id",
]

LINKS_TABLE = "identity_live_links"
LINKS_SCHEMA = T.StructType(
    [
        T.StructField("id_type", T.StringType(), False),
        T.StructField("id_value", T.StringType(), False),
        T.StructField("customer_id", T.StringType(), False),
        T.StructField("event_ts", T.TimestampType(), True),  # the identify/alias event that made the link
        T.StructField("message_id", T.StringType(), True),
        T.StructField("linked_at", T.TimestampType(), False),
    ]
)
# Which identifier decides an event's customer when several resolve (most reliable first).
RESOLUTION_ORDER = ("crm_id", "email", "device_id", "anonymous_id")
_KNOWN = ("crm_id", "email")
_ANONYMOUS = ("anonymous_id", "device_id")


def _id(c: Column) -> Column:
    s = F.trim(c)
    return F.when(s != "", s)


def _identifiers(events: DataFrame) -> dict[str, Column]:
    return {
        "crm_id": _id(F.col("userId")),
        "email": F.lower(_id(F.col("traits").getItem("email"))),
        "device_id": _id(F.col("context.device.id")),
        "anonymous_id": _id(F.col("anonymousId")),
    }


def event_identifiers(events: DataFrame) -> DataFrame:
    """(messageId, id_type, id_value, rank) for every identifier an event carries."""
    ids = _identifiers(events)
    pairs = F.array(*[
        F.struct(F.lit(t).alias("id_type"), ids[t].alias("id_value"), F.lit(i).alias("rank"))
        for i, t in enumerate(RESOLUTION_ORDER)
    ])
    return (
        events.select("messageId", F.explode(pairs).alias("p"))
        .select("messageId", "p.id_type", "p.id_value", "p.rank")
        .where(F.col("id_value").isNotNull())
    )


def identity_lookup(spark: SparkSession, lakehouse: Lakehouse) -> DataFrame:
    """(id_type, id_value, customer_id): the identity map, plus live links for ids it does not know."""
    empty = spark.createDataFrame([], "id_type string, id_value string, customer_id string")
    base = (lakehouse.read("gold", "identity_map").select("id_type", "id_value", "customer_id")
            if lakehouse.exists("gold", "identity_map") else empty)
    if not lakehouse.exists("gold", LINKS_TABLE):
        return base
    links = lakehouse.read("gold", LINKS_TABLE).select("id_type", "id_value", "customer_id")
    return base.unionByName(links.join(base, ["id_type", "id_value"], "left_anti"))


def with_customer_id(events: DataFrame, lookup: DataFrame) -> DataFrame:
    """Add ``customer_id`` (null when no identifier resolves) by :data:`RESOLUTION_ORDER`."""
    best = (
        event_identifiers(events).join(lookup, ["id_type", "id_value"])
        .groupBy("messageId").agg(F.min_by("customer_id", "rank").alias("customer_id"))
    )
    return events.join(best, "messageId", "left")


def new_links(events: DataFrame, lookup: DataFrame, now: datetime) -> DataFrame:
    """Links carried by ``identify``/``alias`` events: each anonymous id (``anonymousId``, device id,
    alias ``previousId``) -> the customer of the event's known id (crm id, else email).
    Ids the lookup already knows (identity map or an earlier link) keep their customer: the first
    link wins until the next identity run decides. Within one batch the latest event wins."""
    ids = _identifiers(events)
    known = (
        events.where(F.col("type").isin("identify", "alias"))
        .select(
            "messageId", F.col("timestamp").alias("event_ts"),
            F.array(*[F.struct(F.lit(t).alias("k_type"), ids[t].alias("k_value"), F.lit(i).alias("k_rank"))
                      for i, t in enumerate(_KNOWN)]).alias("known"),
            F.array(
                F.struct(F.lit("anonymous_id").alias("id_type"), ids["anonymous_id"].alias("id_value")),
                F.struct(F.lit("device_id").alias("id_type"), ids["device_id"].alias("id_value")),
                F.struct(F.lit("anonymous_id").alias("id_type"), _id(F.col("previousId")).alias("id_value")),
            ).alias("anon"),
        )
    )
    resolved = (
        known.select("messageId", "event_ts", "anon", F.explode("known").alias("k"))
        .select("messageId", "event_ts", "anon", "k.*")
        .join(lookup.select(F.col("id_type").alias("k_type"), F.col("id_value").alias("k_value"), "customer_id"),
              ["k_type", "k_value"])
        .groupBy("messageId", "event_ts", "anon").agg(F.min_by("customer_id", "k_rank").alias("customer_id"))
    )
    mapped = lookup.select("id_type", "id_value")
    return (
        resolved.select("messageId", "event_ts", "customer_id", F.explode("anon").alias("a"))
        .select("a.id_type", "a.id_value", "customer_id", "event_ts", F.col("messageId").alias("message_id"))
        .where(F.col("id_value").isNotNull())
        .join(mapped, ["id_type", "id_value"], "left_anti")
        .groupBy("id_type", "id_value")
        .agg(F.max_by(F.struct("customer_id", "event_ts", "message_id"), F.struct("event_ts", "message_id")).alias("l"))
        .select("id_type", "id_value", "l.customer_id", "l.event_ts", "l.message_id",
                F.lit(now).cast("timestamp").alias("linked_at"))
    )


def merge_links(spark: SparkSession, lakehouse: Lakehouse, links: DataFrame) -> None:
    """Upsert links into ``gold.identity_live_links`` (idempotent: a replayed batch changes nothing)."""
    path = lakehouse.path("gold", LINKS_TABLE)
    if not lakehouse.exists("gold", LINKS_TABLE):
        spark.createDataFrame([], LINKS_SCHEMA).write.format("delta").mode("ignore").save(path)
    (
        DeltaTable.forPath(spark, path).alias("t")
        .merge(links.alias("s"), "t.id_type = s.id_type and t.id_value = s.id_value")
        .whenMatchedUpdate(
            condition="s.event_ts > t.event_ts or (s.event_ts = t.event_ts and s.message_id > t.message_id)",
            set={"customer_id": "s.customer_id", "event_ts": "s.event_ts", "message_id": "s.message_id",
                 "linked_at": "s.linked_at"})
        .whenNotMatchedInsertAll()
        .execute()
    )
