"""The event stream's Kafka input against a real KRaft broker on 127.0.0.1 (tests/kafka_fixtures.py).

Same contract, rescue and quarantine as the file path; every record read lands exactly once in
bronze or quarantine, across a restart that replays a batch and picks up new records; a cart
abandoned in Kafka events fires once.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from chispa import assert_df_equality
from pyspark.sql import functions as F

from cdp_lib.bronze.sources import load_sources
from cdp_lib.streaming.config import TriggersConfig
from cdp_lib.streaming.job import EventStream
from tests.kafka_fixtures import kafka_broker, produce  # noqa: F401 - kafka_broker is a fixture
from tests.streaming_fixtures import (
    FIRED,
    Clock,
    at,
    identify,
    iso,
    private_lakehouse,
    seed_customers,
    track,
    webhook,  # noqa: F401 - fixture
)


def _config(bootstrap: str, topics: dict[str, str], hook_url: str) -> TriggersConfig:
    return TriggersConfig.model_validate({
        # Four records per micro-batch: the first run already spans several batches of the Kafka query.
        "stream": {"sources": ["web_events", "app_events"], "trigger_interval": "1 second",
                   "checkpoint": "kafka_test",
                   "kafka": {"bootstrap_servers": bootstrap, "topics": topics, "max_offsets_per_trigger": 4}},
        "triggers": [{
            "name": "cart_abandonment",
            "start_events": ["Product Added", "Checkout Started"],
            "complete_events": ["Order Completed"],
            "delay": "15 minutes", "watermark": "10 minutes", "consent": "email",
            "sinks": {"webhook": {"url": hook_url, "timeout_s": 5}},
        }],
    })


def _publish(spark, bootstrap: str, topic: str, events: list[dict | str]) -> None:
    """Events keyed by person (anonymous or user id), as a tracker would: one person's events stay in
    one partition, in order, so an identify is read before the events it identifies."""
    records = []
    for e in events:
        key = "junk" if isinstance(e, str) else (e.get("anonymousId") or e.get("userId") or "none")
        records.append((key, e if isinstance(e, str) else json.dumps(e)))
    produce(spark, bootstrap, topic, records)


def _addresses(spark, bootstrap: str, topic: str) -> set[str]:
    """Every record of the topic as ``kafka://topic/partition/offset``, read back with a batch query."""
    rows = (
        spark.read.format("kafka").option("kafka.bootstrap.servers", bootstrap).option("subscribe", topic)
        .option("startingOffsets", "earliest").load()
        .select(F.format_string("kafka://%s/%d/%d", "topic", "partition", "offset").alias("a")).collect()
    )
    return {r["a"] for r in rows}


def _lineage(lh, table: str) -> list[str]:
    return [r["_source_file"] for r in lh.read("bronze", table).select("_source_file").collect()]


def test_kafka_events_land_once_in_bronze_and_fire_a_cart(spark, settings, tmp_path, kafka_broker, webhook):  # noqa: F811
    lh = private_lakehouse(spark, settings, tmp_path)
    seed_customers(spark, lh)
    bootstrap, suffix = kafka_broker.bootstrap, uuid.uuid4().hex[:8]
    topics = {"web_events": f"cdp.web.{suffix}", "app_events": f"cdp.app.{suffix}"}
    config, sources, clock = _config(bootstrap, topics, webhook.url), load_sources(settings.conf_dir), Clock(at(1))

    def run() -> None:  # a fresh job each time: every run is a restart from the checkpoints
        EventStream(spark, lh, config, sources, clock=clock).run_available_now()

    _publish(spark, bootstrap, topics["web_events"], [
        identify("m1", iso(-1), user="C1", anon="a1"),              # links cookie a1 to cust1 ...
        track("m2", "Product Added", iso(0), "k1", anon="a1"),      # ... so this cart is cust1's
        track("m3", "Product Added", iso(0), "k2", user="C2"),
        track("m4", "Order Completed", iso(0.5), "k2", user="C2"),  # completed: never fires
        {**track("m5", "Page Viewed", iso(0), None, user="C2"), "campaign": "spring"},  # drift: rescued
        "{not json",                                                 # quarantined: not JSON
        {**track("m6", "Page Viewed", iso(0), None, user="C2"), "messageId": None},     # quarantined: contract
    ])
    run()  # the app topic does not exist yet: the stream reads what exists

    web = _addresses(spark, bootstrap, topics["web_events"])
    assert len(web) == 7
    # Every record read is in exactly one of bronze / quarantine, addressed by topic/partition/offset.
    good, bad = _lineage(lh, "web_events"), _lineage(lh, "web_events_quarantine")
    assert (len(good), len(bad)) == (5, 2)
    assert sorted(good + bad) == sorted(web)
    reasons = sorted(r["reason"] for r in lh.read("bronze", "web_events_quarantine").collect())
    assert reasons == ["contract: messageId is required", "malformed json (not a JSON object)"]
    assert lh.read("bronze", "web_events_quarantine").where("raw = '{not json'").count() == 1
    rescued = lh.read("bronze", "web_events").where("messageId = 'm5'").first()["_rescued"]
    assert json.loads(rescued) == {"campaign": "spring"}
    assert lh.read("gold", "trigger_events").count() == 0      # nothing due before delay + watermark
    batches = lh.read("ops", "run_log").where(F.get_json_object("details", "$.input") == "kafka")
    assert batches.count() >= 2                                # 7 records at 4 per micro-batch
    assert batches.where(F.col("rows_in") != F.get_json_object("details", "$.records").cast("long")).count() == 0

    # More records arrive while the stream is down (on a topic created only now, too), and the last
    # batch is replayed after a "crash": the restart neither repeats a row nor loses one.
    _publish(spark, bootstrap, topics["web_events"], [
        track("m7", "Page Viewed", iso(2), None, user="C1"),
        track("m8", "Page Viewed", iso(3), None, anon="a1"),
    ])
    _publish(spark, bootstrap, topics["app_events"], [
        track("p1", "Product Added", iso(0), "k7", user="C4"),      # no profile: not consented
    ])
    commits = sorted(Path(lh.checkpoint("streams", "kafka_test_kafka"), "commits").glob("[0-9]*"),
                     key=lambda p: int(p.name))
    commits[-1].unlink()  # Spark re-runs that batch (same offsets) on restart
    commits[-1].with_name(f".{commits[-1].name}.crc").unlink(missing_ok=True)
    run()
    web = _addresses(spark, bootstrap, topics["web_events"])
    good, bad = _lineage(lh, "web_events"), _lineage(lh, "web_events_quarantine")
    assert (len(web), len(good), len(bad)) == (9, 7, 2)
    assert sorted(good + bad) == sorted(web)
    ids = [r["messageId"] for r in lh.read("bronze", "web_events").collect()]
    assert sorted(ids) == ["m1", "m2", "m3", "m4", "m5", "m7", "m8"]
    assert sorted(_lineage(lh, "app_events")) == sorted(_addresses(spark, bootstrap, topics["app_events"]))

    # Past 15 min delay + 10 min watermark: the cart of cookie a1 (cust1, via the identify) fires,
    # once, however often the stream restarts.
    clock.now = at(26)
    run()
    run()
    expected = spark.createDataFrame([("cart_abandonment", "cust1", "k1", at(26), at(0))], FIRED)
    fired = lh.read("gold", "trigger_events").select("trigger", "customer_id", "cart_id", "fired_at", "event_ts")
    assert_df_equality(fired, expected, ignore_row_order=True, ignore_nullable=True)
    assert [e["cart_id"] for _, body in webhook.posts for e in body["events"]] == ["k1"]
    states = {r["cart_id"]: r["status"] for r in lh.read("ops", "trigger_cart_state").collect()}
    assert states["k1"] == "fired" and states["k7"] == "no_consent"
