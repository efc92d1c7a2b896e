"""The event stream end to end: files land over (controlled) time, carts fire once, restarts are exactly-once."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from chispa import assert_df_equality

from cdp_lib.bronze.sources import load_sources
from cdp_lib.streaming.config import TriggersConfig
from cdp_lib.streaming.job import EventStream
from tests.s3_fixtures import moto_server  # noqa: F401 - fixture
from tests.streaming_fixtures import (
    FIRED,
    Clock,
    at,
    identify,
    iso,
    land,
    private_lakehouse,
    seed_customers,
    track,
    webhook,  # noqa: F401 - fixture
)


def _config(drop: dict | None, hook_url: str = "") -> TriggersConfig:
    return TriggersConfig.model_validate({
        "stream": {"sources": ["web_events", "app_events"], "trigger_interval": "1 second",
                   "max_files_per_trigger": 1, "checkpoint": "events_test"},
        "triggers": [{
            "name": "cart_abandonment",
            "start_events": ["Product Added", "Checkout Started"],
            "complete_events": ["Order Completed"],
            "delay": "15 minutes", "watermark": "10 minutes", "consent": "email",
            "sinks": {"drop": drop, "webhook": {"url": hook_url, "timeout_s": 5}},
        }],
    })


def _fired(spark, lh):
    return lh.read("gold", "trigger_events").select("trigger", "customer_id", "cart_id", "fired_at", "event_ts")


def _expected(spark, rows: list[tuple[str, str, str, datetime, datetime]]):
    return spark.createDataFrame(rows, FIRED)


def test_abandoned_cart_fires_once_after_delay_across_restarts(spark, settings, tmp_path, moto_server, webhook):  # noqa: F811
    lh = private_lakehouse(spark, settings, tmp_path)
    landing = tmp_path / "landing"
    seed_customers(spark, lh)
    bucket = moto_server.new_bucket()
    drop = {"uri": f"s3a://{bucket}/triggers", "s3": {"endpoint": moto_server.endpoint, "path_style_access": True,
                                                      "ssl_enabled": False, "max_attempts": 1}}
    config, sources, clock = _config(drop, webhook.url), load_sources(settings.conf_dir), Clock(at(1))

    def run() -> None:  # a fresh job object each time: every run is a restart from the checkpoint
        EventStream(spark, lh, config, sources, clock=clock).run_available_now()

    land(landing, "web", [
        identify("m1", iso(-1), user="C1", anon="a1"),            # links cookie a1 to cust1 ...
        track("m2", "Product Added", iso(0), "k1", anon="a1"),    # ... so this cart is cust1's, same batch
        track("m3", "Product Added", iso(0), "k2", user="C2"),
        track("m4", "Order Completed", iso(0.5), "k2", user="C2"),   # completed: never fires
        track("m5", "Checkout Started", iso(0), "k3", email=" C3@example.com"),  # no consent
        track("m6", "Product Added", iso(0), "k4", user="C4"),    # no profile: not consented by default
        track("m7", "Product Added", iso(0), "k9", anon="stranger"),  # never identified
        "{not json",
    ])
    run()
    assert lh.read("gold", "trigger_events").count() == 0      # nothing due before delay + watermark
    assert lh.read("bronze", "web_events").count() == 7
    assert lh.read("bronze", "web_events_quarantine").count() == 1

    clock.now = at(26)  # past 15 min delay + 10 min watermark: no new file, the tick fires
    run()
    expected = _expected(spark, [("cart_abandonment", "cust1", "k1", at(26), at(0))])
    assert_df_equality(_fired(spark, lh), expected, ignore_row_order=True, ignore_nullable=True)
    assert [p[1]["events"][0]["cart_id"] for p in webhook.posts] == ["k1"]
    assert webhook.posts[0][0]["Idempotency-Key"] == webhook.posts[0][1]["delivery_id"]
    keys = sorted(o["Key"].split("/")[-1] for o in moto_server.client().list_objects_v2(
        Bucket=bucket, Prefix="triggers/cart_abandonment/")["Contents"])
    assert keys == ["_SUCCESS", "manifest.json", "part-00000.jsonl"]
    states = {r["cart_id"]: r["status"] for r in lh.read("ops", "trigger_cart_state").collect()}
    assert states == {"k1": "fired", "k2": "open", "k3": "no_consent", "k4": "no_consent", "k9": "anonymous"}

    # The same cart touched again (app events now) and the last batch replayed after a "crash":
    # nothing fires twice, bronze keeps each row once.
    clock.now = at(27)
    land(landing, "app", [track("m8", "Product Added", iso(26.5), "k1", user="C1")])
    run()
    commits = sorted(Path(lh.checkpoint("streams", "events_test"), "commits").glob("[0-9]*"),
                     key=lambda p: int(p.name))
    commits[-1].unlink()  # Spark re-runs that batch on restart
    commits[-1].with_name(f".{commits[-1].name}.crc").unlink(missing_ok=True)
    run()
    assert_df_equality(_fired(spark, lh), expected, ignore_row_order=True, ignore_nullable=True)
    assert len(webhook.posts) == 1
    assert lh.read("bronze", "app_events").count() == 1
    assert lh.read("bronze", "web_events").count() == 7
    links = [(r["id_type"], r["id_value"], r["customer_id"]) for r in lh.read("gold", "identity_live_links").collect()]
    assert links == [("anonymous_id", "a1", "cust1")]


def test_late_events_within_watermark_count_and_older_ones_do_not(spark, settings, tmp_path):
    lh = private_lakehouse(spark, settings, tmp_path)
    landing = tmp_path / "landing"
    seed_customers(spark, lh)
    config = _config({"uri": str(tmp_path / "drops")})
    sources, clock = load_sources(settings.conf_dir), Clock(at(0))

    def run() -> None:
        EventStream(spark, lh, config, sources, clock=clock).run_available_now()

    land(landing, "web", [
        track("l1", "Product Added", iso(-5), "late_ok", user="C1"),     # 5 min late: within the watermark
        track("l2", "Product Added", iso(-20), "too_late", user="C1"),   # 20 min late: beyond it, ignored
        track("l3", "Product Added", iso(0), "saved", user="C2"),
    ])
    run()
    clock.now = at(8)
    land(landing, "web", [track("l4", "Order Completed", iso(1), "saved", user="C2")])  # 7 min late, still in time
    run()
    clock.now = at(40)
    run()
    expected = _expected(spark, [("cart_abandonment", "cust1", "late_ok", at(40), at(-5))])
    assert_df_equality(_fired(spark, lh), expected, ignore_row_order=True, ignore_nullable=True)
    drops = list((tmp_path / "drops" / "cart_abandonment").iterdir())
    assert len(drops) == 1 and (drops[0] / "_SUCCESS").exists()
    lines = [json.loads(line) for line in (drops[0] / "part-00000.jsonl").read_text().splitlines()]
    assert [(r["customer_id"], r["cart_id"]) for r in lines] == [("cust1", "late_ok")]
    assert json.loads((drops[0] / "manifest.json").read_text())["rows"] == 1


def test_failed_webhook_is_retried_without_firing_twice(spark, settings, tmp_path, webhook):  # noqa: F811
    lh = private_lakehouse(spark, settings, tmp_path)
    seed_customers(spark, lh)
    config = _config(None, webhook.url)
    sources, clock = load_sources(settings.conf_dir), Clock(at(0))
    land(tmp_path / "landing", "web", [track("w1", "Product Added", iso(0), "k1", user="C1")])
    job = EventStream(spark, lh, config, sources, clock=clock)
    job.run_available_now()
    clock.now = at(30)
    webhook.failing = True
    job.tick()
    assert webhook.posts == []
    assert lh.read("gold", "trigger_events").where("delivered_at is null").count() == 1
    webhook.failing = False
    EventStream(spark, lh, config, sources, clock=clock).run_available_now()   # a restart retries delivery
    EventStream(spark, lh, config, sources, clock=clock).run_available_now()
    sent = [(e["customer_id"], e["cart_id"]) for _, body in webhook.posts for e in body["events"]]
    assert sent == [("cust1", "k1")]
    expected = _expected(spark, [("cart_abandonment", "cust1", "k1", at(30), at(0))])
    assert_df_equality(_fired(spark, lh), expected, ignore_row_order=True, ignore_nullable=True)
