"""Deliver alerts to the configured sinks: the log, ops.alerts, HTTP webhooks."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request

from pyspark.sql import types as T

from cdp_lib.pipeline.checks import Alert, AlertSinks

__all__ = ["ALERTS_SCHEMA", "deliver_alerts"]

log = logging.getLogger(__name__)

ALERTS_SCHEMA = T.StructType(
    [
        T.StructField("run_id", T.StringType(), False),
        T.StructField("check", T.StringType(), False),
        T.StructField("severity", T.StringType(), False),
        T.StructField("subject", T.StringType(), False),
        T.StructField("message", T.StringType(), False),
        T.StructField("value", T.DoubleType(), True),
        T.StructField("threshold", T.DoubleType(), True),
        T.StructField("raised_at", T.TimestampType(), False),
    ]
)


def _post(url: str, payload: dict, timeout: float) -> None:
    body = json.dumps(payload).encode()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (configured URL)
        if resp.status >= 300:
            raise urllib.error.HTTPError(url, resp.status, "webhook rejected the alert", resp.headers, None)


def deliver_alerts(lakehouse, alerts: list[Alert], sinks: AlertSinks) -> dict:
    """Send ``alerts`` to every sink; a failing webhook is logged, not fatal. Returns counts."""
    delivered = {"log": 0, "table": 0, "webhook": 0, "webhook_failed": 0}
    if not alerts:
        return delivered
    if sinks.log:
        for a in alerts:
            log.warning("ALERT [%s] %s: %s", a.severity, a.check, a.message)
        delivered["log"] = len(alerts)
    if sinks.table:
        rows = [
            (a.run_id, a.check, a.severity, a.subject, a.message, a.value, a.threshold, a.raised_at) for a in alerts
        ]
        df = lakehouse.spark.createDataFrame(rows, ALERTS_SCHEMA)
        df.write.format("delta").mode("append").save(lakehouse.path("ops", "alerts"))
        lakehouse.register("ops", "alerts")
        delivered["table"] = len(alerts)
    for hook in sinks.webhooks:
        payload = {"alerts": [a.as_dict() for a in alerts]}
        try:
            _post(hook.url, payload, hook.timeout_s)
            delivered["webhook"] += len(alerts)
        except (urllib.error.URLError, OSError) as exc:
            delivered["webhook_failed"] += len(alerts)
            log.error("alert webhook failed (%s); alerts are in the log and ops.alerts", type(exc).__name__)
    return delivered
