"""Bronze ingestion of CSV, JSON lines and Parquet: contract, quarantine accounting, schema
drift, lineage, re-runs and re-delivered files. Real Spark, real Delta, files written here."""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from decimal import Decimal

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from cdp_lib.bronze import ingest_sources
from cdp_lib.session import register_functions
from tests.bronze_fixtures import EVENTS_CONTRACT, private_lakehouse, sources, uri, write_parquet, write_text

CONTACTS = {
    "name": "tb_contacts", "format": "csv", "path": "crm/*/contacts_*.csv", "entity": "contacts",
    "options": {"header": True}, "identifiers": {"contact_id": "crm_id", "email": "email"},
    "contract": [
        {"name": "contact_id", "type": "string", "nullable": False},
        {"name": "email", "type": "string"},
        {"name": "updated_at", "type": "timestamp", "nullable": False},
        {"name": "score", "type": "int"},
    ],
}
EVENTS = {
    "name": "tb_events", "format": "jsonl", "path": "events/*/events-*.jsonl", "entity": "events",
    "identifiers": {"userId": "user_id", "traits.email": "email", "context.device.id": "device_id"},
    "contract": EVENTS_CONTRACT,
}
ORDERS = {
    "name": "tb_orders", "format": "parquet", "path": "orders/*/orders-*.parquet", "entity": "orders",
    "contract": [
        {"name": "order_id", "type": "string", "nullable": False},
        {"name": "amount", "type": "decimal(12,2)"},
        {"name": "items", "type": "array<struct<sku:string,qty:int>>"},
    ],
}

CONTACTS_DAY1 = """contact_id,email,updated_at,score
C1,a@x.com,2026-01-01T10:00:00+01:00,5
C2,,2026-01-01T11:00:00Z,
C3,c@x.com,not-a-time,1
"C4,broken
C5,e@x.com,2026-01-01T12:00:00Z,7,extra
,f@x.com,2026-01-01T12:00:00Z,1
"""
# Day 2: a new column (drift) in one file, another file with its columns in another order and one missing.
CONTACTS_DAY2_DRIFT = "contact_id,email,updated_at,score,segment\nC1,a2@x.com,2026-01-02T10:00:00Z,6,gold\n"
CONTACTS_DAY2_REORDERED = "updated_at,contact_id\n2026-01-02T11:00:00Z,C6\n"
EVENTS_DAY1 = "\n".join([
    '{"messageId":"m1","userId":"u1","traits":{"email":"a@x.com"},"context":{"device":{"id":"d1"}},"n":1,'
    '"ts":"2026-01-01T00:00:00Z"}',
    '{"messageId":"m2","n":"two","ts":"2026-01-01T00:00:00Z"}',
    "not json at all",
    "",
    '{"messageId":"m3","ts":"2026-01-01T00:00:00Z","newField":{"a":1},"n":3}',
    '{"userId":"u4","ts":"2026-01-01T00:00:00Z"}',
]) + "\n"
ORDER_SCHEMA = "order_id string, amount decimal(12,2), items array<struct<sku:string,qty:int>>, coupon string"


@pytest.fixture(scope="module")
def first_run(spark, settings, tmp_path_factory):
    root = tmp_path_factory.mktemp("bronze_ingest")
    lh = private_lakehouse(spark, settings, root)
    landing = lh.settings.lakehouse.landing
    files = {
        "c1": write_text(landing, "crm/2026-01-01/contacts_full_2026-01-01.csv", CONTACTS_DAY1),
        "c2": write_text(landing, "crm/2026-01-02/contacts_delta_2026-01-02.csv", CONTACTS_DAY2_DRIFT),
        "c3": write_text(landing, "crm/2026-01-02/contacts_extra_2026-01-02.csv", CONTACTS_DAY2_REORDERED),
        "e1": write_text(landing, "events/2026-01-01/events-0001.jsonl", EVENTS_DAY1),
        "o1": write_parquet(spark, landing, "orders/2026-01-01/orders-0001.parquet", [
            ("O1", Decimal("10.50"), [("s1", 2)], None),
            ("O2", None, None, "WELCOME"),
            (None, Decimal("1.00"), [], None),
        ], ORDER_SCHEMA),
    }
    config = sources(CONTACTS, EVENTS, ORDERS)
    summary = ingest_sources(spark, lh, config, run_id="run-1")
    yield lh, config, files, summary
    shutil.rmtree(root, ignore_errors=True)


def _bronze(lh, table, columns):
    return lh.read("bronze", table).select(*columns)


def test_summary_counts_every_input_row(first_run):
    _, _, _, summary = first_run
    assert {k: (v["files"], v["rows"], v["quarantined"]) for k, v in summary.items()} == {
        "tb_contacts": (3, 4, 4),  # day 1: 6 lines = 2 good + 4 bad; day 2: 2 good
        "tb_events": (1, 2, 3),  # 5 non-blank lines
        "tb_orders": (1, 2, 1),
    }


def test_csv_contract_drift_and_lineage(spark, first_run):
    lh, _, files, _ = first_run
    actual = _bronze(lh, "tb_contacts", ["contact_id", "email", "updated_at", "score", "_source", "_source_file",
                                         "_rescued"])
    expected = spark.createDataFrame([
        ("C1", "a@x.com", datetime(2026, 1, 1, 9, 0), 5, "tb_contacts", uri(files["c1"]), None),
        ("C2", None, datetime(2026, 1, 1, 11, 0), None, "tb_contacts", uri(files["c1"]), None),
        ("C1", "a2@x.com", datetime(2026, 1, 2, 10, 0), 6, "tb_contacts", uri(files["c2"]), '{"segment":"gold"}'),
        ("C6", None, datetime(2026, 1, 2, 11, 0), None, "tb_contacts", uri(files["c3"]), None),
    ], "contact_id string, email string, updated_at timestamp, score int, _source string, _source_file string, "
       "_rescued string")
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_csv_quarantine_keeps_raw_line_reason_and_file(spark, first_run):
    lh, _, files, summary = first_run
    actual = lh.read("bronze", "tb_contacts_quarantine").select("raw", "reason", "_source_file", "_batch_id")
    batch = summary["tb_contacts"]["batch_id"]
    f = uri(files["c1"])
    expected = spark.createDataFrame([
        ('{"contact_id":"C3","email":"c@x.com","updated_at":"not-a-time","score":"1"}',
         "contract: updated_at is not timestamp", f, batch),
        ('"C4,broken', "malformed csv line (field count or quoting)", f, batch),
        ("C5,e@x.com,2026-01-01T12:00:00Z,7,extra", "malformed csv line (field count or quoting)", f, batch),
        ('{"email":"f@x.com","updated_at":"2026-01-01T12:00:00Z","score":"1"}', "contract: contact_id is required",
         f, batch),
    ], "raw string, reason string, _source_file string, _batch_id string")
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_json_lines_nested_contract_rescue_and_quarantine(spark, first_run):
    lh, _, files, _ = first_run
    # Maps cannot be sorted by chispa: compare traits as its JSON text.
    actual = lh.read("bronze", "tb_events").select(
        "messageId", "userId", F.to_json("traits").alias("traits"), "context", "n", "ts", "_rescued")
    expected = spark.createDataFrame([
        ("m1", "u1", '{"email":"a@x.com"}', (("d1",),), 1, datetime(2026, 1, 1), None),
        ("m3", None, None, None, 3, datetime(2026, 1, 1), '{"newField":"{\\"a\\":1}"}'),
    ], "messageId string, userId string, traits string, context struct<device:struct<id:string>>, "
       "n int, ts timestamp, _rescued string")
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)
    quarantined = lh.read("bronze", "tb_events_quarantine").select("raw", "reason")
    expected_q = spark.createDataFrame([
        ('{"messageId":"m2","n":"two","ts":"2026-01-01T00:00:00Z"}',
         "contract: a field does not match its declared type"),
        ("not json at all", "malformed json (not a JSON object)"),
        ('{"userId":"u4","ts":"2026-01-01T00:00:00Z"}', "contract: messageId is required"),
    ], "raw string, reason string")
    assert_df_equality(quarantined, expected_q, ignore_row_order=True, ignore_nullable=True)


def test_parquet_contract_and_drift(spark, first_run):
    lh, _, _, _ = first_run
    actual = _bronze(lh, "tb_orders", ["order_id", "amount", "items", "_rescued"])
    expected = spark.createDataFrame([
        ("O1", Decimal("10.50"), [("s1", 2)], None),
        ("O2", None, None, '{"coupon":"WELCOME"}'),
    ], "order_id string, amount decimal(12,2), items array<struct<sku:string,qty:int>>, _rescued string")
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)
    reasons = [r.reason for r in lh.read("bronze", "tb_orders_quarantine").collect()]
    assert reasons == ["contract: order_id is required"]


def test_file_log_run_log_catalog_and_cdf(spark, first_run):
    lh, _, files, _ = first_run
    per_file = {
        (r.file_path, r.rows, r.quarantined)
        for r in lh.read("ops", "bronze_file_log").where("status = 'committed' and source = 'tb_contacts'").collect()
    }
    assert per_file == {(uri(files["c1"]), 2, 4), (uri(files["c2"]), 1, 0), (uri(files["c3"]), 1, 0)}
    run = lh.read("ops", "run_log").where("source = 'tb_contacts'").collect()
    assert [(r.stage, r.status, r.rows_in, r.rows_out, r.rows_quarantined) for r in run] == [
        ("bronze", "success", 8, 4, 4)
    ]
    assert json.loads(run[0].details)["files"] == 3
    assert spark.table("bronze.tb_contacts").count() == 4
    props = lh.delta("bronze", "tb_contacts").detail().first().properties
    assert props.get("delta.enableChangeDataFeed") == "true"


def test_rerun_ingests_nothing_and_redelivery_is_skipped(spark, first_run):
    lh, config, files, _ = first_run
    landing = lh.settings.lakehouse.landing
    versions = {t: lh.version("bronze", t) for t in ("tb_contacts", "tb_events", "tb_orders")}
    again = ingest_sources(spark, lh, config, run_id="run-2")
    assert {k: (v["files"], v["rows"], v["quarantined"]) for k, v in again.items()} == {
        k: (0, 0, 0) for k in versions
    }
    assert {t: lh.version("bronze", t) for t in versions} == versions

    # A byte-identical re-delivery under a new name, plus one genuinely new file.
    redelivered = files["c1"].with_name("contacts_full_2026-01-01.redelivered.csv")
    shutil.copyfile(files["c1"], redelivered)
    write_text(landing, "crm/2026-01-03/contacts_delta_2026-01-03.csv",
               "contact_id,email,updated_at,score\nC7,g@x.com,2026-01-03T00:00:00Z,2\n")
    third = ingest_sources(spark, lh, config, ["tb_contacts"], run_id="run-3")["tb_contacts"]
    assert (third["files"], third["duplicates"], third["rows"], third["quarantined"]) == (1, 1, 1, 0)
    assert lh.read("bronze", "tb_contacts").where(F.col("_batch_id") == third["batch_id"]).select(
        "contact_id").collect() == [("C7",)]
    dup = lh.read("ops", "bronze_file_log").where(
        F.col("file_path") == uri(redelivered)).select("status", "duplicate_of").collect()
    assert sorted(dup) == [("committed", uri(files["c1"])), ("planned", uri(files["c1"]))]


def test_parquet_type_change_in_a_later_batch_is_a_contract_violation(spark, first_run):
    lh, config, _, _ = first_run
    write_parquet(spark, lh.settings.lakehouse.landing, "orders/2026-01-02/orders-0001.parquet",
                  [("O3", "12.50"), ("O4", "abc")], "order_id string, amount string")
    out = ingest_sources(spark, lh, config, ["tb_orders"], run_id="run-4")["tb_orders"]
    assert (out["rows"], out["quarantined"]) == (1, 1)
    row = lh.read("bronze", "tb_orders").where("order_id = 'O3'").select("amount").first()
    assert row.amount == Decimal("12.50")
    q = lh.read("bronze", "tb_orders_quarantine").where(F.col("_batch_id") == out["batch_id"]).select(
        "raw", "reason").collect()
    assert q == [('{"order_id":"O4","amount":"abc"}', "contract: amount is not decimal(12,2)")]


def test_every_uncommitted_plan_is_replayed_oldest_first_and_a_repeated_row_counts_once():
    # A run commits its batches at its end: killed after replaying batch 1 and planning batch 2, it
    # leaves both planned. Both are replayed; a plan row written twice is one file, not two reads.
    from types import SimpleNamespace

    from cdp_lib.bronze.filelog import pending_batches

    def row(seq, status, path):
        return SimpleNamespace(source="s", batch_seq=seq, batch_id=f"r:s:{seq}", status=status, file_path=path,
                               size=1, modified_at=None, content_hash=path, duplicate_of=None,
                               watermark_from=None, watermark_to=None)

    rows = [row(0, "planned", "a"), row(0, "committed", "a"), row(1, "planned", "b"), row(1, "planned", "b"),
            row(2, "planned", "c"), row(2, "planned", "d")]
    assert [(b.seq, [f.path for f in b.files], b.resumed) for b in pending_batches(rows, "s")] == [
        (1, ["b"], True), (2, ["c", "d"], True)]


def test_a_failing_source_leaves_the_others_written_committed_and_logged_in_one_commit(spark, settings, tmp_path):
    # Three sources written at once; one fails (a CSV header repeating a column). The other two
    # finish and commit, the failed one stays planned, and the three run-log rows are one commit.
    from cdp_lib.errors import SchemaContractError

    lh = private_lakehouse(spark, settings, tmp_path)
    landing = lh.settings.lakehouse.landing
    write_text(landing, "crm/2026-01-01/contacts_full_2026-01-01.csv", "contact_id,contact_id\nC1,C1\n")
    write_text(landing, "events/2026-01-01/events-0001.jsonl", EVENTS_DAY1)
    write_parquet(spark, landing, "orders/2026-01-01/orders-0001.parquet", [("O1", Decimal("1.00"), [], None)],
                  ORDER_SCHEMA)
    with pytest.raises(SchemaContractError, match="repeats a column name"):
        ingest_sources(spark, lh, sources(CONTACTS, EVENTS, ORDERS), run_id="run-p", parallel=3)
    states = {(r.source, r.status) for r in lh.read("ops", "bronze_file_log").collect()}
    assert states == {("tb_contacts", "planned"), ("tb_events", "planned"), ("tb_events", "committed"),
                      ("tb_orders", "planned"), ("tb_orders", "committed")}
    assert (lh.read("bronze", "tb_events").count(), lh.read("bronze", "tb_orders").count()) == (2, 1)
    logged = {(r.source, r.status) for r in lh.read("ops", "run_log").collect()}
    assert logged == {("tb_contacts", "failed"), ("tb_events", "success"), ("tb_orders", "success")}
    assert lh.version("ops", "run_log") == 0  # one commit for the three rows


# Wall-clock times written without an offset, as a London shop's till exports them, and the UTC
# instants they are with `timeZone: Europe/London`; an offset in the text always wins.
LONDON = [
    ("2026-07-01 12:00:00", datetime(2026, 7, 1, 11, 0)),  # BST
    ("2026-01-15T12:00:00", datetime(2026, 1, 15, 12, 0)),  # GMT
    ("2026-07-01 12:00:00.250", datetime(2026, 7, 1, 11, 0, 0, 250000)),
    ("2026-03-29 01:30:00", datetime(2026, 3, 29, 1, 30)),  # in the spring gap: moves forward by it
    ("2026-10-25 01:30:00", datetime(2026, 10, 25, 0, 30)),  # ambiguous: the earlier offset (BST)
    ("2026-07-01", datetime(2026, 6, 30, 23, 0)),  # a date alone: local midnight
    ("2026-07-01T12:00:00+02:00", datetime(2026, 7, 1, 10, 0)),
    ("2026-07-01T12:00:00Z", datetime(2026, 7, 1, 12, 0)),
]


def test_a_source_time_zone_reads_naive_timestamps_as_its_wall_clock_and_offsets_win(spark, settings, tmp_path):
    lh = private_lakehouse(spark, settings, tmp_path)
    landing = lh.settings.lakehouse.landing
    # A session without the project's Java function (not from build_session): ingest registers it.
    spark.sql("DROP TEMPORARY FUNCTION IF EXISTS cdp_to_timestamp")
    contract = [{"name": "id", "type": "string", "nullable": False}, {"name": "ts", "type": "timestamp"}]
    csv_text = "id,ts\n" + "".join(f"r{i},{text}\n" for i, (text, _) in enumerate(LONDON)) + "bad,not-a-time\n"
    write_text(landing, "till/2026-07-01/till_1.csv", csv_text)
    write_text(landing, "app/2026-07-01/events-1.jsonl",
               "".join(json.dumps({"id": f"r{i}", "ts": text}) + "\n" for i, (text, _) in enumerate(LONDON)))
    # A key outside the contract sends this file through the line parser (from_json), not the reader.
    write_text(landing, "app/2026-07-01/events-2.jsonl",
               "".join(json.dumps({"id": f"d{i}", "ts": text, "extra": 1}) + "\n"
                       for i, (text, _) in enumerate(LONDON)))
    # Parquet's timestamp_ntz is a wall clock too (the naive rows only: it holds no offset).
    naive = {f"r{i}": datetime.fromisoformat(text) for i, (text, _) in enumerate(LONDON)
             if not (text.endswith("Z") or "+" in text)}
    write_parquet(spark, landing, "erp/2026-07-01/orders-1.parquet", list(naive.items()), "id string, ts timestamp_ntz")
    london = {"timeZone": "Europe/London"}
    blocks = [
        {"name": "tz_csv", "format": "csv", "path": "till/*/till_*.csv", "entity": "orders",
         "options": {"header": True, **london}, "contract": contract},
        {"name": "utc_csv", "format": "csv", "path": "till/*/till_*.csv", "entity": "orders",
         "options": {"header": True}, "contract": contract},
        {"name": "tz_json", "format": "jsonl", "path": "app/*/events-*.jsonl", "entity": "events",
         "options": london, "contract": contract},
        {"name": "tz_parquet", "format": "parquet", "path": "erp/*/orders-*.parquet", "entity": "orders",
         "options": london, "contract": contract},
    ]
    try:
        summary = ingest_sources(spark, lh, sources(*blocks), run_id="run-tz")
    finally:
        register_functions(spark)  # for the tests after this one, whatever happened
    want = {f"r{i}": ts for i, (_, ts) in enumerate(LONDON)}

    def read(table):
        return {r.id: r.ts for r in lh.read("bronze", table).select("id", "ts").collect()}

    assert read("tz_csv") == want
    assert read("tz_json") == {**want, **{f"d{k[1:]}": v for k, v in want.items()}}
    assert read("tz_parquet") == {k: want[k] for k in naive}
    # Without the option a naive time is UTC (the session's zone).
    assert read("utc_csv")["r0"] == datetime(2026, 7, 1, 12, 0)
    # Text that is no time at all still goes to quarantine with its reason.
    assert summary["tz_csv"]["quarantined"] == 1
    assert lh.read("bronze", "tz_csv_quarantine").select("reason").first().reason == "contract: ts is not timestamp"
