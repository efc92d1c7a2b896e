"""The pipeline runner: order, run log, retries, no retry on CdpError, resume; checks and alerts."""

import json
import threading
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from pyspark.sql import functions as F

from cdp_lib.cli import Context
from cdp_lib.errors import CdpError, ConfigError, DataQualityError
from cdp_lib.lakehouse import Lakehouse
from cdp_lib.pipeline.alerts import deliver_alerts
from cdp_lib.pipeline.checks import (
    AlertSinks,
    DuplicateRateCheck,
    FreshnessCheck,
    MonitoringConfig,
    NullRateCheck,
    VolumeCheck,
    WebhookSink,
    run_checks,
)
from cdp_lib.pipeline.config import PipelineConfig, load_pipeline_config
from cdp_lib.pipeline.runner import StageFailed, run_pipeline
from cdp_lib.runlog import stage_run


def make_ctx(spark, settings, root) -> Context:
    lh_settings = settings.lakehouse.model_copy(update={"root": str(root), "checkpoints": str(root / "_cp")})
    ctx = Context(settings.model_copy(update={"lakehouse": lh_settings}))
    ctx.__dict__["spark"] = spark  # reuse the suite's session (cached_property slot)
    ctx.__dict__["lakehouse"] = Lakehouse(spark, ctx.settings)
    return ctx


def pipeline(*names_deps) -> PipelineConfig:
    return PipelineConfig.model_validate(
        {"stages": [{"name": n, "job": n, "command": n, "depends_on": d, "retry_delay_s": 0} for n, d in names_deps]}
    )


def run_log(ctx):
    return ctx.lakehouse.read("ops", "run_log").where(F.col("source").isNull())


def test_stages_run_in_dependency_order_and_are_logged(spark, settings, tmp_path):
    ctx = make_ctx(spark, settings, tmp_path)
    order = []
    def stage(name):
        return lambda c, r, a: order.append(name) or {"rows_in": 3, "rows_out": 2}

    fns = {n: stage(n) for n in "abc"}
    # declared out of order: c needs b needs a
    cfg = pipeline(("c", ["b"]), ("a", []), ("b", ["a"]))
    result = run_pipeline(ctx, cfg, fns, run_id="r1")
    assert order == ["a", "b", "c"]
    assert result["stages"]["b"]["status"] == "success"
    rows = {r.stage: (r.status, r.rows_in, r.rows_out) for r in run_log(ctx).collect()}
    assert rows == {"a": ("success", 3, 2), "b": ("success", 3, 2), "c": ("success", 3, 2)}


def test_transient_failure_is_retried(spark, settings, tmp_path):
    ctx = make_ctx(spark, settings, tmp_path)
    calls = {"n": 0}

    def flaky(c, r, a):
        calls["n"] += 1
        if calls["n"] < 3:
            raise OSError("connection reset")
        return {"rows_out": 1}

    result = run_pipeline(ctx, pipeline(("a", [])), {"a": flaky}, run_id="r2")
    assert calls["n"] == 3 and result["stages"]["a"]["attempts"] == 3
    statuses = sorted(r.status for r in run_log(ctx).collect())
    assert statuses == ["failed", "failed", "success"]


def test_cdp_error_is_not_retried_and_resume_skips_done_stages(spark, settings, tmp_path):
    ctx = make_ctx(spark, settings, tmp_path)
    calls = []
    broken = {"yes": True}

    def a(c, r, args):
        calls.append("a")

    def b(c, r, args):
        calls.append("b")
        if broken["yes"]:
            raise DataQualityError("silver.contacts: rule email_not_null failed for 3 rows")

    cfg = pipeline(("a", []), ("b", ["a"]), ("c", ["b"]))
    fns = {"a": a, "b": b, "c": lambda c, r, a: calls.append("c")}
    with pytest.raises(StageFailed, match="stage b failed"):
        run_pipeline(ctx, cfg, fns, run_id="r3")
    assert calls == ["a", "b"]  # no retry of a CdpError, c never started
    # a later run of a command outside the pipeline (cdp maintain) does not hide the failed run
    with stage_run(spark, ctx.lakehouse.path("ops", "run_log"), "r4", "maintain"):
        pass
    broken["yes"] = False
    result = run_pipeline(ctx, cfg, fns, resume=True)
    assert result["run_id"] == "r3"
    assert calls == ["a", "b", "b", "c"]
    assert result["stages"]["a"] == {"status": "skipped"}


def test_resume_without_failed_run_is_an_error(spark, settings, tmp_path):
    ctx = make_ctx(spark, settings, tmp_path)
    run_pipeline(ctx, pipeline(("a", [])), {"a": lambda c, r, a: None}, run_id="ok")
    with pytest.raises(CdpError, match="nothing to resume"):
        run_pipeline(ctx, pipeline(("a", [])), {"a": lambda c, r, a: None}, resume=True)


def test_pipeline_config_rejects_cycles_and_unknown_deps(tmp_path):
    (tmp_path / "pipeline.yaml").write_text("stages:\n  - {name: a, job: a, command: a, depends_on: [zz]}\n")
    with pytest.raises(ConfigError, match=r"stages\.0\.depends_on: unknown stage 'zz'"):
        load_pipeline_config(tmp_path)
    (tmp_path / "pipeline.yaml").write_text(
        "stages:\n  - {name: a, job: a, command: a, depends_on: [b]}\n"
        "  - {name: b, job: b, command: b, depends_on: [a]}\n"
    )
    with pytest.raises(ConfigError, match="cycle"):
        load_pipeline_config(tmp_path)
    (tmp_path / "pipeline.yaml").write_text("stages:\n  - {name: a, jbo: a, command: a}\n")
    with pytest.raises(ConfigError, match=r"stages\.0\.jbo: unknown key"):
        load_pipeline_config(tmp_path)


def test_shipped_pipeline_config_loads():
    names = [s.name for s in load_pipeline_config().ordered()]
    assert names == ["ingest", "silver", "identity", "gold", "segments", "export"]


# ---------------------------------------------------------------- checks and alerts


@pytest.fixture
def quality_lake(spark, settings, tmp_path):
    ctx = make_ctx(spark, settings, tmp_path)
    lh = ctx.lakehouse
    now = datetime(2026, 11, 29, 12, 0)
    spark.createDataFrame(
        [("a@x.com", now - timedelta(hours=30)), (None, now - timedelta(hours=40)), (None, now - timedelta(hours=50))],
        "email string, _ingested_at timestamp",
    ).write.format("delta").save(lh.path("bronze", "crm_contacts"))
    spark.createDataFrame([("c1",), ("c1",), ("c2",), ("c3",)], "crm_id string").write.format("delta").save(
        lh.path("silver", "contacts")
    )
    return ctx, now


def test_checks_raise_expected_alerts(quality_lake):
    ctx, now = quality_lake
    cfg = MonitoringConfig(
        freshness=[FreshnessCheck(table="bronze.crm_contacts", max_age_hours=24)],
        null_rate=[NullRateCheck(table="bronze.crm_contacts", column="email", max_rate=0.5)],
        duplicate_rate=[DuplicateRateCheck(table="silver.contacts", key=["crm_id"], max_rate=0.1)],
    )
    alerts = {a.check: a for a in run_checks(ctx.lakehouse, "r9", cfg, now=now)}
    assert set(alerts) == {"freshness", "null_rate", "duplicate_rate"}
    assert alerts["freshness"].value == pytest.approx(30.0)
    assert alerts["null_rate"].value == pytest.approx(2 / 3)
    assert alerts["duplicate_rate"].value == pytest.approx(0.25)
    # thresholds not crossed -> no alert
    calm = MonitoringConfig(
        freshness=[FreshnessCheck(table="bronze.crm_contacts", max_age_hours=31)],
        null_rate=[NullRateCheck(table="bronze.crm_contacts", column="email", max_rate=0.7)],
        duplicate_rate=[DuplicateRateCheck(table="silver.contacts", key=["crm_id"], max_rate=0.25)],
    )
    assert run_checks(ctx.lakehouse, "r9", calm, now=now) == []


def test_volume_anomaly_against_trailing_mean(spark, settings, tmp_path):
    ctx = make_ctx(spark, settings, tmp_path)
    counts = {"r1": 100, "r2": 110, "r3": 90, "r4": 400}
    def ingest(rows):
        return lambda c, r, a: {"rows_in": rows}

    for run_id, n in counts.items():
        run_pipeline(ctx, pipeline(("ingest", [])), {"ingest": ingest(n)}, run_id=run_id)
    cfg = MonitoringConfig(volume=[VolumeCheck(stage="ingest", tolerance=0.5)])
    alerts = run_checks(ctx.lakehouse, "r4", cfg)
    assert [a.check for a in alerts] == ["volume"] and alerts[0].value == 400
    assert run_checks(ctx.lakehouse, "r3", cfg) == []


class _Hook(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_alerts_reach_log_table_and_webhook(quality_lake, caplog):
    ctx, now = quality_lake
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        cfg = MonitoringConfig(null_rate=[NullRateCheck(table="bronze.crm_contacts", column="email", max_rate=0.1)])
        alerts = run_checks(ctx.lakehouse, "r7", cfg, now=now)
        dead = "http://127.0.0.1:9/nothing-listens-here"
        sinks = AlertSinks(webhooks=[WebhookSink(url=f"http://127.0.0.1:{server.server_port}/hook"),
                                     WebhookSink(url=dead, timeout_s=1)])
        with caplog.at_level("WARNING"):
            delivered = deliver_alerts(ctx.lakehouse, alerts, sinks)
    finally:
        server.shutdown()
    assert delivered == {"log": 1, "table": 1, "webhook": 1, "webhook_failed": 1}
    assert _Hook.received[-1]["alerts"][0]["check"] == "null_rate"
    assert "ALERT [warning] null_rate" in caplog.text and "a@x.com" not in caplog.text
    stored = ctx.lakehouse.read("ops", "alerts").collect()
    assert [(r.run_id, r.check, r.subject) for r in stored] == [("r7", "null_rate", "bronze.crm_contacts.email")]


def test_maintain_rejects_an_unknown_layer_before_touching_the_lakehouse(capsys):
    from cdp_lib.cli import main

    assert main(["maintain", "--dry-run", "--layers", "silver,platinum"]) == 2
    assert "unknown layer(s) platinum" in capsys.readouterr().err
