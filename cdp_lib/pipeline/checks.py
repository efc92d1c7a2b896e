"""Data-quality checks over the lakehouse after a run, and the alerts they raise.

Declared in conf/monitoring.yaml. Each check yields :class:`Alert` objects; the runner
hands them to the configured sinks (:mod:`cdp_lib.pipeline.alerts`). Alert messages
carry table names, columns and figures, never row values.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from pydantic import Field
from pyspark.sql import functions as F

from cdp_lib.config import StrictModel, load_model
from cdp_lib.lakehouse import split_table_name

__all__ = ["Alert", "MonitoringConfig", "load_monitoring_config", "run_checks"]

log = logging.getLogger(__name__)


class FreshnessCheck(StrictModel):
    table: str  # layer.table with an _ingested_at (bronze) or a timestamp column
    column: str = "_ingested_at"
    max_age_hours: float = Field(gt=0)


class VolumeCheck(StrictModel):
    stage: str  # run-log stage (e.g. ingest)
    trailing_runs: int = Field(default=7, ge=1)
    tolerance: float = Field(default=0.5, gt=0)  # allowed relative deviation from the trailing mean
    min_history: int = Field(default=2, ge=1)


class NullRateCheck(StrictModel):
    table: str
    column: str
    max_rate: float = Field(ge=0, le=1)


class DuplicateRateCheck(StrictModel):
    table: str
    key: list[str]
    max_rate: float = Field(ge=0, le=1)


class IdentityCheck(StrictModel):
    max_cluster_size: int = Field(default=200, ge=1)
    merge_rate_spike: float = Field(default=3.0, gt=1)  # this run's merges vs trailing mean
    trailing_runs: int = Field(default=7, ge=1)


class WebhookSink(StrictModel):
    url: str
    timeout_s: float = 5.0


class AlertSinks(StrictModel):
    log: bool = True
    table: bool = True
    webhooks: list[WebhookSink] = Field(default_factory=list)


class MonitoringConfig(StrictModel):
    freshness: list[FreshnessCheck] = Field(default_factory=list)
    volume: list[VolumeCheck] = Field(default_factory=list)
    null_rate: list[NullRateCheck] = Field(default_factory=list)
    duplicate_rate: list[DuplicateRateCheck] = Field(default_factory=list)
    identity: IdentityCheck | None = None
    sinks: AlertSinks = Field(default_factory=AlertSinks)


def load_monitoring_config(conf_dir: Path | None = None) -> MonitoringConfig:
    return load_model(MonitoringConfig, "monitoring", conf_dir)


@dataclass(frozen=True)
class Alert:
    run_id: str
    check: str  # freshness | volume | null_rate | duplicate_rate | identity_giant | identity_merge_spike
    severity: str  # warning | critical
    subject: str  # table, stage or source the alert is about
    message: str
    value: float | None
    threshold: float | None
    raised_at: datetime

    def as_dict(self) -> dict:
        d = asdict(self)
        d["raised_at"] = self.raised_at.isoformat()
        return d


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _freshness(lh, run_id, check: FreshnessCheck, now: datetime) -> list[Alert]:
    layer, name = split_table_name(check.table)
    if not lh.exists(layer, name):
        return [
            Alert(
                run_id,
                "freshness",
                "critical",
                check.table,
                f"{check.table} does not exist",
                None,
                check.max_age_hours,
                now,
            )
        ]
    latest = lh.read(layer, name).agg(F.max(check.column)).first()[0]
    age_h = None if latest is None else (now - latest).total_seconds() / 3600
    if age_h is None or age_h > check.max_age_hours:
        shown = "never" if age_h is None else f"{age_h:.1f}h ago"
        return [
            Alert(
                run_id,
                "freshness",
                "warning",
                check.table,
                f"no new data in {check.table} for more than {check.max_age_hours:g}h (last: {shown})",
                age_h,
                check.max_age_hours,
                now,
            )
        ]
    return []


def _volume(lh, run_id, check: VolumeCheck, now: datetime) -> list[Alert]:
    if not lh.exists("ops", "run_log"):
        return []
    rows = (
        lh.read("ops", "run_log")
        .where((F.col("stage") == check.stage) & (F.col("status") == "success") & F.col("rows_in").isNotNull())
        .groupBy("run_id", F.coalesce("source", F.lit("")).alias("source"))
        .agg(F.max("rows_in").alias("rows_in"), F.max("ended_at").alias("ended_at"))
        .collect()
    )
    alerts = []
    by_source: dict[str, list] = {}
    for r in rows:
        by_source.setdefault(r.source, []).append(r)
    for source, runs in sorted(by_source.items()):
        current = [r for r in runs if r.run_id == run_id]
        if not current:
            continue
        earlier = (r for r in runs if r.run_id != run_id and r.ended_at < current[0].ended_at)
        history = sorted(earlier, key=lambda r: r.ended_at)[-check.trailing_runs :]
        if len(history) < check.min_history:
            continue
        mean = sum(r.rows_in for r in history) / len(history)
        value = current[0].rows_in
        deviation = abs(value - mean) / mean if mean else (0.0 if value == 0 else float("inf"))
        if deviation > check.tolerance:
            subject = f"{check.stage}/{source}" if source else check.stage
            alerts.append(
                Alert(
                    run_id,
                    "volume",
                    "warning",
                    subject,
                    f"{subject}: {value} rows vs trailing mean {mean:.0f} ({deviation:.0%} off)",
                    float(value),
                    check.tolerance,
                    now,
                )
            )
    return alerts


def _null_rate(lh, run_id, check: NullRateCheck, now: datetime) -> list[Alert]:
    layer, name = split_table_name(check.table)
    if not lh.exists(layer, name):
        return []
    total, nulls = lh.read(layer, name).agg(F.count(F.lit(1)), F.count_if(F.col(check.column).isNull())).first()
    rate = nulls / total if total else 0.0
    if rate > check.max_rate:
        return [
            Alert(
                run_id,
                "null_rate",
                "warning",
                f"{check.table}.{check.column}",
                f"{check.table}.{check.column} is null in {rate:.1%} of {total} rows (max {check.max_rate:.1%})",
                rate,
                check.max_rate,
                now,
            )
        ]
    return []


def _duplicate_rate(lh, run_id, check: DuplicateRateCheck, now: datetime) -> list[Alert]:
    layer, name = split_table_name(check.table)
    if not lh.exists(layer, name):
        return []
    df = lh.read(layer, name)
    # One pass over the table instead of a count plus a distinct count.
    total, distinct = df.agg(F.count(F.lit(1)), F.count_distinct(F.struct(*check.key))).first()
    rate = (total - distinct) / total if total else 0.0
    if rate > check.max_rate:
        key = ",".join(check.key)
        return [
            Alert(
                run_id,
                "duplicate_rate",
                "warning",
                check.table,
                f"{check.table}: {rate:.2%} of {total} rows share a key ({key}); max {check.max_rate:.2%}",
                rate,
                check.max_rate,
                now,
            )
        ]
    return []


def _identity(lh, run_id, check: IdentityCheck, now: datetime) -> list[Alert]:
    alerts = []
    if lh.exists("gold", "identity_map"):
        sizes = lh.read("gold", "identity_map").groupBy("customer_id").count()
        biggest = sizes.agg(F.max("count")).first()[0] or 0
        if biggest > check.max_cluster_size:
            alerts.append(
                Alert(
                    run_id,
                    "identity_giant",
                    "critical",
                    "gold.identity_map",
                    f"largest customer holds {biggest} identifiers (max {check.max_cluster_size})",
                    float(biggest),
                    float(check.max_cluster_size),
                    now,
                )
            )
    if lh.exists("gold", "identity_lineage"):
        merges = (
            lh.read("gold", "identity_lineage")
            .where(F.col("event") == "merge")
            .groupBy("run_id")
            .agg(F.count(F.lit(1)).alias("n"), F.max("recorded_at").alias("at"))
            .collect()
        )
        current = next((m for m in merges if m.run_id == run_id), None)
        if current is not None:
            earlier = sorted((m for m in merges if m.at < current.at), key=lambda m: m.at)
            history = [m.n for m in earlier][-check.trailing_runs :]
            mean = sum(history) / len(history) if history else 0
            if mean and current.n > check.merge_rate_spike * mean:
                alerts.append(
                    Alert(
                        run_id,
                        "identity_merge_spike",
                        "warning",
                        "gold.identity_lineage",
                        f"{current.n} merges this run vs trailing mean {mean:.1f}",
                        float(current.n),
                        check.merge_rate_spike * mean,
                        now,
                    )
                )
    return alerts


def run_checks(lakehouse, run_id: str, config: MonitoringConfig, now: datetime | None = None) -> list[Alert]:
    """Evaluate every configured check; returns the alerts (not yet delivered)."""
    now = now or _now()
    alerts: list[Alert] = []
    for c in config.freshness:
        alerts += _freshness(lakehouse, run_id, c, now)
    for c in config.volume:
        alerts += _volume(lakehouse, run_id, c, now)
    for c in config.null_rate:
        alerts += _null_rate(lakehouse, run_id, c, now)
    for c in config.duplicate_rate:
        alerts += _duplicate_rate(lakehouse, run_id, c, now)
    if config.identity:
        alerts += _identity(lakehouse, run_id, config.identity, now)
    log.info("run %s: %d data-quality alert(s)", run_id, len(alerts))
    return alerts
