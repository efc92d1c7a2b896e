"""Probabilistic tier: scored edges between person records that share no identifier.

Candidate pairs come from blocking rules (equal, non-null Spark SQL expressions over the
standard attributes); blocks larger than ``max_block_size`` are skipped. Each pair is
compared field by field into levels (0 = same, 1 = close, 2 = different, null = missing),
and scored Fellegi-Sunter style: ``w = logit2(prior) + sum log2(m[level] / u[level])``.
u is estimated from random record pairs of the data itself (almost all non-matches); m is
the documented weighting in conf/identity.yaml (``probabilistic.m``). Pairs whose match
probability reaches ``threshold`` become edges between the records' key identifiers.
"""

from __future__ import annotations

import logging
import math
from functools import reduce

import pyarrow as pa
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from cdp_lib.identity.config import ATTRIBUTES, ProbabilisticSettings
from cdp_lib.identity.graph import PROBABILISTIC_RULE

__all__ = ["comparison_levels", "estimate_u", "probabilistic_edges", "jaro_winkler"]

log = logging.getLogger(__name__)


def _jw_arrays(a: pa.Array, b: pa.Array) -> pa.Array:
    """Jaro-Winkler similarity of each pair ``(a[i], b[i])``; null where either is null."""
    import numpy as np
    from rapidfuzz import process
    from rapidfuzz.distance import JaroWinkler

    left, right = a.to_pylist(), b.to_pylist()
    both = [x is not None and y is not None for x, y in zip(left, right, strict=True)]
    pairs = [(x, y) for x, y, ok in zip(left, right, both, strict=True) if ok]
    # float64, as JaroWinkler.similarity returns: cpdist's default float32 could move a score
    # across the "close" threshold.
    sims = iter(process.cpdist([x for x, _ in pairs], [y for _, y in pairs], scorer=JaroWinkler.similarity,
                               dtype=np.float64).tolist() if pairs else [])
    return pa.array([next(sims) if ok else None for ok in both], pa.float64())


def jaro_winkler(a: Column, b: Column) -> Column:
    """Jaro-Winkler similarity (rapidfuzz; Spark has no built-in). An Arrow UDF: whole batches of
    pairs go to rapidfuzz's vectorised ``cpdist`` (2M pairs: 1.5-2.7 s against 4.5-7.9 s for a
    row-at-a-time Python UDF; /tmp/prof/jwtest.py, 2026-12-05)."""
    return F.arrow_udf(_jw_arrays, T.DoubleType())(a, b)


def _level(left: Column, right: Column, close: Column | None) -> Column:
    lvl = F.when(left.isNull() | right.isNull(), F.lit(None)).when(left == right, F.lit(0))
    if close is not None:
        lvl = lvl.when(close, F.lit(1))
    return lvl.otherwise(F.lit(2)).cast("int")


def _close(attr: str, left: Column, right: Column) -> Column | None:
    lev = F.levenshtein(left, right)
    if attr in ("first_name", "last_name"):
        return jaro_winkler(left, right) >= 0.88
    if attr == "birth_date":
        # one typo, or day and month swapped (yyyy-MM-dd)
        swapped = F.concat(F.substring(right, 1, 5), F.substring(right, 9, 2), F.lit("-"), F.substring(right, 6, 2))
        return (lev <= 1) | (left == swapped)
    if attr == "address":
        return lev <= F.greatest(F.lit(2), (F.greatest(F.length(left), F.length(right)) * 0.2).cast("int"))
    if attr == "postcode":
        return F.substring(left, 1, 3) == F.substring(right, 1, 3)
    if attr in ("phone", "email"):
        return lev <= 1 if attr == "phone" else lev <= 2
    return None


def comparison_levels(pairs: DataFrame, attrs: list[str]) -> DataFrame:
    """Add ``lvl_<attr>`` for each attribute from ``<attr>_l`` / ``<attr>_r`` columns."""
    return pairs.withColumns(
        {f"lvl_{a}": _level(F.col(f"{a}_l"), F.col(f"{a}_r"), _close(a, F.col(f"{a}_l"), F.col(f"{a}_r")))
         for a in attrs}
    )


def _side(recs: DataFrame, suffix: str, attrs: list[str]) -> DataFrame:
    return recs.select(*[F.col(c).alias(f"{c}_{suffix}") for c in ["rid", "source", "record_key", "key_type",
                                                                     "key_value", "ids", *attrs]])


def estimate_u(recs: DataFrame, attrs: list[str], settings: ProbabilisticSettings) -> dict[str, list[float]]:
    """u[attr][level] from random record pairs (non-matches dominate them)."""
    # Not counted first: with fewer than k records the samples are all of them.
    k = max(2, int(math.sqrt(settings.u_sample_pairs)))

    def sample(seed: int) -> DataFrame:
        # The k records of smallest seeded hash: the same records whatever the partitioning (a
        # sample + limit takes whichever rows reach the limit first, so u, the scores and the
        # scored edges could differ between two runs over the same records).
        return recs.orderBy(F.xxhash64("rid", F.lit(seed)), "rid").limit(k)

    left = _side(sample(settings.seed), "l", attrs)
    right = _side(sample(settings.seed + 1), "r", attrs)
    pairs = comparison_levels(left.crossJoin(right).where(F.col("rid_l") != F.col("rid_r")), attrs)
    aggs = [F.count(F.when(F.col(f"lvl_{a}") == lvl, 1)).alias(f"{a}__{lvl}") for a in attrs for lvl in range(3)]
    row = pairs.agg(F.count(F.lit(1)).alias("__pairs"), *aggs).first().asDict()
    if row["__pairs"] == 0:  # fewer than two records: nothing to estimate from
        return {a: [0.01, 0.05, 0.94] for a in attrs}
    u = {}
    for a in attrs:
        counts = [row[f"{a}__{lvl}"] for lvl in range(3)]
        total = sum(counts) or 1
        # Laplace smoothing: a level never seen among random pairs is rare, not impossible.
        u[a] = [(c + 1) / (total + 3) for c in counts]
    return u


def _weight(attrs: list[str], m: dict[str, list[float]], u: dict[str, list[float]], prior: float) -> Column:
    terms = [F.lit(math.log2(prior / (1 - prior)))]
    for a in attrs:
        if a not in m:
            continue
        w = [math.log2(m[a][i] / u[a][i]) for i in range(3)]
        lvl = F.col(f"lvl_{a}")
        terms.append(F.when(lvl == 0, w[0]).when(lvl == 1, w[1]).when(lvl == 2, w[2]).otherwise(0.0))
    return reduce(lambda x, y: x + y, terms)


def probabilistic_edges(records: DataFrame, settings: ProbabilisticSettings, id_cols: list[str]) -> tuple:
    """Scored edges (raw edge rows, see graph.EDGE_SCHEMA less the aggregates) and figures.

    Args:
        records: standard identity records of the inputs switched on for this tier.
        id_cols: the ``id__<type>`` columns present in ``records``.
    """
    attrs = [a for a in ATTRIBUTES if a in records.columns and a in settings.m]
    ids = F.filter(F.array(*[F.concat(F.lit(c + "="), F.col(c)) for c in id_cols]), lambda x: x.isNotNull())
    recs = (
        records.where(F.col("key_value").isNotNull())
        .select("source", "record_key", "key_type", "key_value", ids.alias("ids"), *attrs)
        .withColumn("rid", F.xxhash64("source", "record_key"))
    ).persist()
    if not settings.blocking:
        return None, {}
    # Every rule's block key of every record in one pass: (rid, rule, bk), a record in a rule's
    # block only when all the rule's expressions are non-null. Block sizes for all rules come from
    # one aggregate (one job to count the oversized blocks, not one per rule).
    keys = F.array(*[
        F.when(reduce(lambda x, y: x & y, [F.expr(e).isNotNull() for e in rule]),
               F.struct(F.lit(i).alias("rule"), F.concat_ws("\u0001", *[F.expr(e).cast("string") for e in rule])
                        .alias("bk")))
        for i, rule in enumerate(settings.blocking)
    ])
    blocked = recs.select("rid", F.explode(F.filter(keys, lambda k: k.isNotNull())).alias("b")).select(
        "rid", "b.rule", "b.bk")
    sizes = blocked.groupBy("rule", "bk").agg(F.count(F.lit(1)).alias("n"))
    skipped = sizes.where(F.col("n") > settings.max_block_size).count()
    ok = blocked.join(sizes.where((F.col("n") > 1) & (F.col("n") <= settings.max_block_size)), ["rule", "bk"])
    a = ok.select("rule", "bk", F.col("rid").alias("rid_l"))
    b = ok.select("rule", "bk", F.col("rid").alias("rid_r"))
    # A pair in the blocks of several rules is one candidate.
    cand = a.join(b, ["rule", "bk"]).where(F.col("rid_l") < F.col("rid_r")).select("rid_l", "rid_r").distinct()
    pairs = (
        cand.join(_side(recs, "l", attrs), "rid_l").join(_side(recs, "r", attrs), "rid_r")
        # Decided deterministically already: same key identifier or any identifier in common.
        .where(~((F.col("key_type_l") == F.col("key_type_r")) & (F.col("key_value_l") == F.col("key_value_r"))))
        .where(~F.arrays_overlap("ids_l", "ids_r"))
    )
    u = {a: settings.u[a] for a in attrs} if settings.u else estimate_u(recs, attrs, settings)
    scored = comparison_levels(pairs, attrs).withColumn("w", _weight(attrs, settings.m, u, settings.prior))
    scored = scored.withColumn("p", 1 / (1 + F.pow(F.lit(2.0), -F.col("w"))))
    edges = scored.where(F.col("p") >= settings.threshold)
    a_first = (F.col("key_type_l") < F.col("key_type_r")) | (
        (F.col("key_type_l") == F.col("key_type_r")) & (F.col("key_value_l") <= F.col("key_value_r"))
    )
    out = edges.select(
        F.when(a_first, F.col("key_type_l")).otherwise(F.col("key_type_r")).alias("id_type_a"),
        F.when(a_first, F.col("key_value_l")).otherwise(F.col("key_value_r")).alias("id_value_a"),
        F.when(a_first, F.col("key_type_r")).otherwise(F.col("key_type_l")).alias("id_type_b"),
        F.when(a_first, F.col("key_value_r")).otherwise(F.col("key_value_l")).alias("id_value_b"),
        F.lit(PROBABILISTIC_RULE).alias("rule"),
        F.col("source_l").alias("source"),
        F.concat_ws(" ~ ", F.concat_ws(":", "source_l", "record_key_l"), F.concat_ws(":", "source_r", "record_key_r"))
        .alias("evidence"),
        F.lit(None).cast("timestamp").alias("seen_at"),
        F.lit(None).cast("timestamp").alias("last_seen_at"),
        F.lit(1).cast("long").alias("n_records"),
        F.round("p", 6).alias("score"),
        F.lit(settings.priority).alias("priority"),
    )
    figures = {"blocks_skipped": skipped, "u": {a: [round(x, 5) for x in v] for a, v in u.items()}}
    return out, figures
