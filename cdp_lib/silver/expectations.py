"""Expectations (data-quality rules from YAML): check, count, quarantine, warn or fail.

Each rule adds a boolean ``__dq_<i>`` column (true = the row breaks it; null = the rule
could not be checked, e.g. a missing reference table). One aggregation counts every rule
and every normaliser flag in a single pass; :func:`dq_result_rows` turns the counts into
``ops.dq_results`` rows (one per rule per run), :func:`raise_on_fail` raises
:class:`~cdp_lib.errors.DataQualityError` for violated ``fail`` rules, and
:func:`with_quarantine_reasons` lists the names of the broken ``quarantine`` rules in
``_dq_reasons``. Messages carry rule names and counts only, never row values.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from functools import reduce

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from cdp_lib.errors import DataQualityError
from cdp_lib.silver.spec import NORMALIZER_TYPES, VALIDATING_NORMALIZERS, EntitySpec, Expectation

__all__ = [
    "DQ_RESULTS_SCHEMA",
    "rule_failed",
    "with_rule_checks",
    "dq_counts",
    "dq_result_rows",
    "raise_on_fail",
    "with_quarantine_reasons",
]

log = logging.getLogger(__name__)

DQ_RESULTS_SCHEMA = T.StructType(
    [
        T.StructField("run_id", T.StringType(), False),
        T.StructField("entity", T.StringType(), False),
        T.StructField("rule", T.StringType(), False),
        T.StructField("rule_type", T.StringType(), False),
        T.StructField("column", T.StringType(), True),
        T.StructField("action", T.StringType(), False),  # quarantine | warn | fail | flag
        T.StructField("failed_rows", T.LongType(), True),  # null: rule could not be checked
        T.StructField("total_rows", T.LongType(), False),
        T.StructField("checked_at", T.TimestampType(), False),
    ]
)


def _flag(i: int) -> str:
    return f"__dq_{i}"


def rule_failed(rule: Expectation, col: Column, dtype: T.DataType) -> Column:
    """True when the row breaks ``rule`` (null values pass every rule except ``not_null``).

    ``range`` on a date or timestamp column bounds its year.
    """
    if rule.type == "not_null":
        return col.isNull()
    if rule.type == "regex":
        return col.isNotNull() & ~col.cast("string").rlike(rule.pattern)
    if rule.type == "allowed_values":
        return col.isNotNull() & ~col.isin(*rule.values)
    if rule.type == "range":
        value = F.year(col) if isinstance(dtype, T.DateType | T.TimestampType) else col
        bad = F.lit(False)
        if rule.min is not None:
            bad = bad | (value < F.lit(rule.min))
        if rule.max is not None:
            bad = bad | (value > F.lit(rule.max))
        return col.isNotNull() & bad
    raise ValueError(f"rule type {rule.type} is checked by a join")  # referential


def with_rule_checks(df: DataFrame, entity: EntitySpec, refs: dict[str, DataFrame | None]) -> DataFrame:
    """Add ``__dq_<i>`` per rule. ``refs`` maps ``ref_table`` to its frame (None: table missing)."""
    out = df
    for i, rule in enumerate(entity.expectations):
        if rule.type != "referential":
            dtype = NORMALIZER_TYPES[entity.columns[rule.column]]
            out = out.withColumn(_flag(i), rule_failed(rule, F.col(rule.column), dtype))
            continue
        ref = refs.get(rule.ref_table)
        if ref is None:
            log.warning("expectation %s: reference table %s is missing; rule not checked", rule.name, rule.ref_table)
            out = out.withColumn(_flag(i), F.lit(None).cast("boolean"))
            continue
        hit = f"__ref_{i}"
        keys = ref.select(F.col(rule.ref_column).cast("string").alias(hit)).where(F.col(hit).isNotNull()).distinct()
        out = (
            out.join(keys, F.col(rule.column).cast("string") == F.col(hit), "left")
            .withColumn(_flag(i), F.col(rule.column).isNotNull() & F.col(hit).isNull())
            .drop(hit)
        )
    return out


def dq_counts(df: DataFrame, entity: EntitySpec) -> dict[str, int | None]:
    """Rows in ``df`` (``__total``), rows breaking each rule (by name), rows with each flag, and rows
    breaking at least one quarantine rule (``__quarantined``: those :func:`with_quarantine_reasons` sends
    to quarantine)."""
    flags = [c for c, n in entity.columns.items() if n in VALIDATING_NORMALIZERS]
    aggs = [F.count(F.lit(1)).alias("__total")]
    for i in range(len(entity.expectations)):
        # Null (not checked) stays null through sum only when every row is null: use max to detect it.
        aggs.append(F.sum(F.col(_flag(i)).cast("long")).alias(f"r{i}"))
        aggs.append(F.max(F.col(_flag(i)).isNull().cast("int")).alias(f"n{i}"))
    for j, col in enumerate(flags):
        aggs.append(F.sum(F.array_contains("_dq_flags", f"{col}_invalid").cast("long")).alias(f"f{j}"))
    quarantining = [F.coalesce(F.col(_flag(i)), F.lit(False))
                    for i, rule in enumerate(entity.expectations) if rule.action == "quarantine"]
    if quarantining:
        aggs.append(F.count_if(reduce(Column.__or__, quarantining)).alias("__quarantined"))
    row = df.agg(*aggs).first()
    total = int(row["__total"])
    counts: dict[str, int | None] = {"__total": total,
                                     "__quarantined": int(row["__quarantined"]) if quarantining else 0}
    for i, rule in enumerate(entity.expectations):
        unchecked = rule.type == "referential" and row[f"n{i}"] == 1
        counts[rule.name] = None if unchecked else int(row[f"r{i}"] or 0)
    for j, col in enumerate(flags):
        counts[f"{col}_invalid"] = int(row[f"f{j}"] or 0)
    return counts


def dq_result_rows(run_id: str, entity_name: str, entity: EntitySpec, counts: dict[str, int | None]) -> list[tuple]:
    """``ops.dq_results`` rows: one per expectation, one per normaliser flag (action ``flag``)."""
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    total = counts["__total"]
    rows = [
        (run_id, entity_name, r.name, r.type, r.column, r.action, counts[r.name], total, now)
        for r in entity.expectations
    ]
    for col, norm in entity.columns.items():
        if norm in VALIDATING_NORMALIZERS:
            rows.append((run_id, entity_name, f"{col}_invalid", f"normalize_{norm}", col, "flag",
                         counts[f"{col}_invalid"], total, now))
    return rows


def raise_on_fail(entity_name: str, entity: EntitySpec, counts: dict[str, int | None]) -> None:
    """Log ``warn`` violations; raise DataQualityError naming every violated ``fail`` rule."""
    total = counts["__total"]
    broken = []
    for rule in entity.expectations:
        failed = counts[rule.name]
        if not failed:
            continue
        if rule.action == "fail":
            broken.append(f"{rule.name} ({failed} of {total} rows)")
        else:
            log.warning("silver %s: rule %s (%s) broken by %d of %d rows", entity_name, rule.name, rule.action,
                        failed, total)
    if broken:
        raise DataQualityError(f"silver {entity_name}: expectation(s) with action fail violated: {', '.join(broken)}")


def with_quarantine_reasons(df: DataFrame, entity: EntitySpec) -> DataFrame:
    """Add ``_dq_reasons`` (names of broken quarantine rules, empty when none); drop ``__dq_*``."""
    reasons = [
        F.when(F.col(_flag(i)), F.lit(rule.name))
        for i, rule in enumerate(entity.expectations) if rule.action == "quarantine"
    ]
    col = F.array_compact(F.array(*reasons)) if reasons else F.array().cast("array<string>")
    return df.withColumn("_dq_reasons", col).drop(*[_flag(i) for i in range(len(entity.expectations))])
