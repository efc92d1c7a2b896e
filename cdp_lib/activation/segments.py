"""Segments: a SQL condition over the profile plus an optional condition over recent events.

``conf/segments.yaml``::

    segments:
      - name: cart_abandoners
        description: added to cart in the last 24 hours and no order since
        condition: "consent_email and order_count >= 0"
        events:
          did: Product Added
          within: 24h
          not_since: Order Completed

Conditions are Spark SQL expressions over the columns of ``gold.customer_profile``. They
are analysed against the profile schema when the config loads, so a typo or a wrong type
fails before any data is read, with Spark's own message.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

from pydantic import Field, field_validator, model_validator
from pyspark.errors import PySparkException
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from cdp_lib.config import StrictModel, load_model
from cdp_lib.errors import ConfigError

__all__ = [
    "PROFILE_CONTRACT",
    "CUSTOMER_EVENTS_SCHEMA",
    "EventCondition",
    "Segment",
    "SegmentsConfig",
    "parse_duration",
    "load_segments",
    "validate_conditions",
    "customer_events",
    "event_condition_members",
    "evaluate_segments",
]

NAME = r"^[a-z][a-z0-9_]*$"
_DURATION = re.compile(r"^\s*(\d+)\s*(m|h|d|w)\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}

# The gold.customer_profile columns segments may use when the table does not exist yet
# (the gold stage owns the real table; its schema wins when present).
PROFILE_CONTRACT = T.StructType(
    [
        T.StructField("customer_id", T.StringType(), False),
        T.StructField("first_name", T.StringType()),
        T.StructField("last_name", T.StringType()),
        T.StructField("email", T.StringType()),
        T.StructField("phone", T.StringType()),
        T.StructField("postcode", T.StringType()),
        T.StructField("country", T.StringType()),
        T.StructField("region", T.StringType()),
        T.StructField("order_count", T.LongType()),
        T.StructField("total_spend", T.DecimalType(12, 2)),
        T.StructField("last_order_at", T.TimestampType()),
        T.StructField("days_since_last_order", T.IntegerType()),
        T.StructField("rfm_score", T.StringType()),
        T.StructField("last_abandoned_cart_at", T.TimestampType()),
        T.StructField("consent_email", T.BooleanType()),
        T.StructField("consent_sms", T.BooleanType()),
        T.StructField("consent_ads", T.BooleanType()),
    ]
)

# What the event condition reads: one row per event already linked to a customer.
CUSTOMER_EVENTS_SCHEMA = T.StructType(
    [
        T.StructField("customer_id", T.StringType(), False),
        T.StructField("event_name", T.StringType()),
        T.StructField("event_ts", T.TimestampType()),
    ]
)


def parse_duration(text: str) -> timedelta:
    """``30m``, ``24h``, ``7d``, ``2w`` -> timedelta."""
    m = _DURATION.match(text)
    if not m:
        raise ValueError(f"expected a duration like 30m, 24h, 7d or 2w, got {text!r}")
    return timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})


class EventCondition(StrictModel):
    """``did`` happened within ``within`` before the run time (and no ``not_since`` after it)."""

    did: str = Field(min_length=1)
    within: str
    not_since: str | None = None

    @field_validator("within")
    @classmethod
    def _within(cls, v: str) -> str:
        parse_duration(v)
        return v

    @property
    def window(self) -> timedelta:
        return parse_duration(self.within)


class Segment(StrictModel):
    name: str = Field(pattern=NAME)
    description: str = ""
    condition: str = Field(min_length=1)
    events: EventCondition | None = None


class SegmentsConfig(StrictModel):
    segments: list[Segment] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> SegmentsConfig:
        seen: set[str] = set()
        for s in self.segments:
            if s.name in seen:
                raise ValueError(f"segment {s.name!r} is defined twice")
            seen.add(s.name)
        return self

    def get(self, name: str) -> Segment:
        for s in self.segments:
            if s.name == name:
                return s
        raise KeyError(name)


def _first_line(exc: Exception) -> str:
    msg = getattr(exc, "getMessage", lambda: str(exc))() or str(exc)
    return " ".join(msg.strip().splitlines()[:1]) if msg.strip() else type(exc).__name__


def validate_conditions(spark: SparkSession, config: SegmentsConfig, profile_schema: T.StructType,
                        file: str = "segments.yaml") -> None:
    """Analyse every condition against ``profile_schema``; raise ConfigError on the first bad one.

    The expression must parse, resolve against the profile columns and be boolean. The
    message names the segment and quotes Spark's analysis error.
    """
    empty = spark.createDataFrame([], profile_schema)
    for i, seg in enumerate(config.segments):
        key = f"segments.{i}.condition"
        try:
            # Classic DataFrames analyse eagerly: a bad column or type fails here, on 0 rows.
            data_type = empty.select(F.expr(seg.condition).alias("c")).schema["c"].dataType
        except PySparkException as exc:
            raise ConfigError(file, key, f"segment {seg.name!r}: invalid condition: {_first_line(exc)}") from None
        if not isinstance(data_type, T.BooleanType):
            raise ConfigError(
                file, key,
                f"segment {seg.name!r}: condition must be boolean, Spark types it as {data_type.simpleString()}",
            )


def load_segments(spark: SparkSession, conf_dir: Path | None = None,
                  profile_schema: T.StructType | None = None) -> SegmentsConfig:
    """Load and validate ``conf/segments.yaml`` (conditions checked against the profile schema)."""
    from cdp_lib.config import default_conf_dir

    conf = Path(conf_dir or default_conf_dir())
    config = load_model(SegmentsConfig, "segments", conf)
    validate_conditions(spark, config, profile_schema or PROFILE_CONTRACT, str(conf / "segments.yaml"))
    return config


def customer_events(events: DataFrame, identity_map: DataFrame) -> DataFrame:
    """silver.events -> (customer_id, event_name, event_ts) through gold.identity_map.

    A known ``user_id`` wins over the cookie; events of unresolved people are dropped.
    """
    ids = identity_map.select("id_type", "id_value", "customer_id")
    by_user = ids.where(F.col("id_type") == "user_id").select(
        F.col("id_value").alias("_uid"), F.col("customer_id").alias("_cid_user")
    )
    by_anon = ids.where(F.col("id_type") == "anonymous_id").select(
        F.col("id_value").alias("_aid"), F.col("customer_id").alias("_cid_anon")
    )
    return (
        events.join(by_user, events["user_id"] == by_user["_uid"], "left")
        .join(by_anon, events["anonymous_id"] == by_anon["_aid"], "left")
        .select(
            F.coalesce("_cid_user", "_cid_anon").alias("customer_id"),
            F.col("event_name"),
            F.col("event_ts"),
        )
        .where(F.col("customer_id").isNotNull())
    )


def _ts(value: datetime) -> Column:
    # Run times are UTC; the session time zone is UTC too (cdp_lib.session).
    return F.lit(value.replace(tzinfo=None)).cast("timestamp")


def event_condition_members(events: DataFrame, cond: EventCondition, as_of: datetime) -> DataFrame:
    """Customers meeting ``cond`` at ``as_of``; ``events`` has (customer_id, event_name, event_ts).

    Events after ``as_of`` are ignored, so a run can be replayed for a past time.
    """
    start = as_of - cond.window
    in_window = (F.col("event_ts") > _ts(start)) & (F.col("event_ts") <= _ts(as_of))
    did = (
        events.where((F.col("event_name") == cond.did) & in_window)
        .groupBy("customer_id")
        .agg(F.max("event_ts").alias("_last_did"))
    )
    if cond.not_since is None:
        return did.select("customer_id")
    later = (
        events.where((F.col("event_name") == cond.not_since) & (F.col("event_ts") <= _ts(as_of)))
        .groupBy("customer_id")
        .agg(F.max("event_ts").alias("_last_not"))
    )
    return (
        did.join(later, "customer_id", "left")
        .where(F.col("_last_not").isNull() | (F.col("_last_not") < F.col("_last_did")))
        .select("customer_id")
    )


def evaluate_segments(profile: DataFrame, events: DataFrame | None, config: SegmentsConfig,
                      as_of: datetime) -> DataFrame:
    """(segment, customer_id) for every customer in every segment at ``as_of``.

    Args:
        profile: gold.customer_profile (one row per customer_id).
        events: (customer_id, event_name, event_ts), see :func:`customer_events`; may be None
            when no segment has an event condition.
    """
    parts = []
    for seg in config.segments:
        members = profile.where(F.coalesce(F.expr(seg.condition), F.lit(False))).select("customer_id")
        if seg.events is not None:
            if events is None:
                raise ValueError(f"segment {seg.name!r} has an event condition but no events were given")
            members = members.join(event_condition_members(events, seg.events, as_of), "customer_id", "left_semi")
        parts.append(members.select(F.lit(seg.name).alias("segment"), "customer_id"))
    if not parts:
        return profile.sparkSession.createDataFrame([], "segment string, customer_id string")
    out = parts[0]
    for p in parts[1:]:
        out = out.unionByName(p)
    return out.distinct()
