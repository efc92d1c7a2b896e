"""Computed traits (conf/traits.yaml) per customer, as of a point in time.

Every input is cut at ``as_of`` before anything is aggregated, and windows end at
``as_of``, so a past date gives the values the customer had then (no leakage from later
rows). Derived traits may use ``_as_of`` (e.g. ``datediff(_as_of, last_order_at)``).
"""

from __future__ import annotations

from datetime import datetime

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from cdp_lib.gold.config import Trait, TraitsConfig

__all__ = ["compute_traits", "with_rfm", "relative_traits", "window_bounds"]


def _in_window(ts: str, as_of: datetime, days: int | None):
    cond = F.col(ts) <= F.lit(as_of)
    if days:
        cond = cond & (F.col(ts) > F.lit(as_of) - F.expr(f"INTERVAL {days} DAYS"))
    return cond


def _aggregates(
    traits: list[Trait], frame: DataFrame, ts: str, as_of: datetime, extra: list | None = None
) -> DataFrame:
    """All aggregate traits of one input in a single pass: each aggregates only its own rows.

    ``extra``: more aggregate columns over every row of the input, computed in the same pass.
    """
    base = frame.where(F.col(ts) <= F.lit(as_of))
    flags = []
    for i, t in enumerate(traits):
        cond = _in_window(ts, as_of, t.window_days)
        if t.where:
            cond = cond & F.expr(t.where)
        flags.append(F.coalesce(cond, F.lit(False)).alias(f"_in{i}"))
    base = base.select("*", *flags)
    # FILTER (WHERE ...) scopes each aggregate to its window and filter within one groupBy.
    aggs = [F.expr(f"{t.expr} FILTER (WHERE _in{i})").alias(t.name) for i, t in enumerate(traits)]
    return base.groupBy("customer_id").agg(*aggs, *(extra or []))


def _mode(t: Trait, frame: DataFrame, ts: str, as_of: datetime) -> DataFrame:
    cond = _in_window(ts, as_of, t.window_days) & F.expr(t.expr).isNotNull()
    if t.where:
        cond = cond & F.expr(t.where)
    counts = frame.where(cond).groupBy("customer_id", F.expr(t.expr).alias("v")).count()
    w = Window.partitionBy("customer_id").orderBy(F.desc("count"), F.asc("v"))
    return (
        counts.withColumn("_r", F.row_number().over(w)).where("_r = 1").select("customer_id", F.col("v").alias(t.name))
    )


def _abandoned_cart(t: Trait, frame: DataFrame, ts: str, as_of: datetime) -> DataFrame:
    """Latest cart event with no order event within ``delay_hours`` after it (deadline passed by as_of)."""
    ev = frame.where(_in_window(ts, as_of, t.window_days)).where(
        F.col(t.event_column).isin(t.cart_events + t.order_events)
    )
    ev = ev.select("customer_id", F.col(ts).alias("ts"), F.col(t.event_column).isin(t.order_events).alias("is_order"))
    following = (
        Window.partitionBy("customer_id").orderBy("ts", F.desc("is_order")).rowsBetween(1, Window.unboundedFollowing)
    )
    ev = ev.withColumn("next_order", F.min(F.when(F.col("is_order"), F.col("ts"))).over(following))
    delay = F.expr(f"INTERVAL {int(t.delay_hours * 3600)} SECONDS")
    abandoned = ev.where(~F.col("is_order") & (F.col("ts") + delay <= F.lit(as_of)))
    abandoned = abandoned.where(F.col("next_order").isNull() | (F.col("next_order") > F.col("ts") + delay))
    return abandoned.groupBy("customer_id").agg(F.max("ts").alias(t.name))


def compute_traits(
    cfg: TraitsConfig,
    frames: dict[str, DataFrame],
    times: dict[str, str],
    as_of: datetime,
    customers: DataFrame,
    extra: dict[str, list] | None = None,
) -> DataFrame:
    """customer_id + one column per trait (RFM excluded: see :func:`with_rfm`) for ``customers``.

    ``extra``: more aggregate columns per input name, computed in the pass that aggregates the
    input's traits (an input with no aggregate trait gets a pass of its own) and returned too.
    """
    out = customers.select("customer_id")
    extra = extra or {}
    groups: dict[str, list[Trait]] = {}
    for t in cfg.traits:
        if t.kind == "aggregate":
            groups.setdefault(t.input, []).append(t)
    pieces = []
    for name in dict.fromkeys([*groups, *extra]):
        pieces.append(_aggregates(groups.get(name, []), frames[name], times[name], as_of, extra.get(name)))
    for t in cfg.traits:
        if t.kind == "mode":
            pieces.append(_mode(t, frames[t.input], times[t.input], as_of))
        elif t.kind == "abandoned_cart":
            pieces.append(_abandoned_cart(t, frames[t.input], times[t.input], as_of))
    for p in pieces:
        out = out.join(p, "customer_id", "left")
    out = out.withColumn("_as_of", F.lit(as_of).cast("timestamp"))
    for t in cfg.traits:
        if t.kind == "derived":
            out = out.withColumn(t.name, F.expr(t.expr))
    return out.drop("_as_of")


def relative_traits(cfg: TraitsConfig) -> list[Trait]:
    """Derived traits that depend on the as-of time itself (recomputed for every customer each run)."""
    return [t for t in cfg.traits if t.kind == "derived" and "_as_of" in t.expr]


def with_rfm(profile: DataFrame, cfg: TraitsConfig, key: str = "customer_id") -> DataFrame:
    """Quantile scores 1..buckets for recency, frequency and monetary, over all customers with orders.

    Scores depend on the whole population, so they are computed over the full profile table: the
    ranking windows sort only (``key``, measure) rows, and the scores join the profile once by
    ``key`` (unique). Sorting the whole profile rows instead ran three sorts of every wide row in
    one task each.
    """
    rfm = [t for t in cfg.traits if t.kind == "rfm"]
    if not rfm:
        return profile
    measures = list(dict.fromkeys(c for t in rfm for c in (t.recency, t.frequency, t.monetary)))
    scored = profile.select(key, *measures)
    names = []
    for t in rfm:
        scores = []
        for part, col in (("r", t.recency), ("f", t.frequency), ("m", t.monetary)):
            has = F.col(col).isNotNull()
            w = Window.partitionBy(has).orderBy(F.col(col).asc())
            rank = F.percent_rank().over(w)
            score = F.least(F.floor(rank * t.buckets) + 1, F.lit(t.buckets)).cast("int")
            scored = scored.withColumn(f"{t.name}_{part}", F.when(has, score))
            scores.append(f"{t.name}_{part}")
        scored = scored.withColumn(
            t.name,
            F.when(F.col(scores[0]).isNotNull(), F.concat(*[F.col(s).cast("string") for s in scores])),
        )
        names += [*scores, t.name]
    return profile.drop(*names).join(scored.select(key, *names), key, "left")


def window_bounds(cfg: TraitsConfig) -> list[int]:
    """Distinct window lengths (days) of windowed traits, for incremental boundary crossings."""
    return sorted({t.window_days for t in cfg.traits if t.window_days})
