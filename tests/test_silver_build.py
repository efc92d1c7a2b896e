"""Silver builds from bronze Delta tables: MERGE ordering with late data, quarantine, DQ results,
idempotent re-runs and incremental == full rebuild, on the shipped conf/silver.yaml."""

from __future__ import annotations

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from cdp_lib.silver.build import build_entity
from cdp_lib.silver.spec import load_silver_config
from tests.silver_fixtures import CRM_SCHEMA, SEGMENT_SCHEMA, append_bronze, crm, lakehouse_at, segment, utc

T1, T2, T3 = utc(2026, 3, 1, 12), utc(2026, 3, 2, 12), utc(2026, 3, 3, 12)
UPD1 = utc(2026, 3, 1, 10)

B1 = [
    crm("C00000001", "ann", " Ann.Smith@Example.com ", "07911 123456", "London", "UK", UPD1, "b1", T1),
    crm("C00000002", "BOB", "bob@example.com", "+33 6 12 34 56 78", "Paris", "France", UPD1, "b1", T1),
    crm("C00000002", "BOB", "bob@example.com", "+33 6 12 34 56 78", "Paris", "France", UPD1, "b1", T1),  # exact dup
    crm(None, "nobody", "n@example.com", None, "Leeds", "GB", UPD1, "b1", T1),
    crm("X1", "bad", "bad@example.com", None, "Leeds", "GB", UPD1, "b1", T1),
]
B2 = [
    crm("C00000001", "ann", "ann.smith@example.com", "07911 123456", "Leeds", "GB", utc(2026, 3, 5, 9), "b2", T2),
    # Late-arriving older version: must not overwrite the 2026-03-01 one.
    crm("C00000002", "BOB", "bob@example.com", "+33 6 12 34 56 78", "Lyon", "France", utc(2026, 2, 1), "b2", T2),
]
B3 = [
    crm("C00000001", "ann", "ann.smith@example.com", "07911 123456", "York", "GB", utc(2026, 3, 3), "b3", T3),
    crm("C00000003", "ZOË", "not-an-email", "12345", "York", "Narnia", utc(2026, 3, 2), "b3", T3),
    # Re-delivered copy of the b1 version: silver keeps pointing at b1.
    crm("C00000002", "BOB", "bob@example.com", "+33 6 12 34 56 78", "Paris", "France", UPD1, "b3", T3),
]

CONTACT_COLS = ["crm_id", "first_name", "email", "phone", "city", "country", "updated_at", "_source", "_record_key",
                "_batch_id", "_dq_flags"]


@pytest.fixture(scope="module")
def cfg():
    return load_silver_config()


@pytest.fixture(scope="module")
def incremental(spark, settings, cfg, tmp_path_factory):
    """contacts built after each of three bronze batches, then once more with nothing new."""
    lh = lakehouse_at(spark, settings, tmp_path_factory.mktemp("silver_inc"))
    results = []
    for i, batch in enumerate((B1, B2, B3), start=1):
        append_bronze(spark, lh, "crm_contacts", batch, CRM_SCHEMA)
        results.append(build_entity(spark, lh, cfg, "contacts", f"run{i}"))
    version = lh.version("silver", "contacts")
    rerun = build_entity(spark, lh, cfg, "contacts", "run4")
    return {"lh": lh, "results": results, "version_before_rerun": version, "rerun": rerun}


def test_latest_version_wins_and_late_data_never_overwrites(spark, incremental):
    actual = incremental["lh"].read("silver", "contacts").select(*CONTACT_COLS)
    expected = spark.createDataFrame(
        [
            ("C00000001", "Ann", "ann.smith@example.com", "+447911123456", "Leeds", "GB", utc(2026, 3, 5, 9),
             "crm_contacts", "C00000001|2026-03-05 09:00:00", "b2", []),
            ("C00000002", "Bob", "bob@example.com", "+33612345678", "Paris", "FR", UPD1,
             "crm_contacts", "C00000002|2026-03-01 10:00:00", "b1", []),
            ("C00000003", "Zoë", None, None, "York", None, utc(2026, 3, 2),
             "crm_contacts", "C00000003|2026-03-02 00:00:00", "b3",
             ["email_invalid", "phone_invalid", "country_invalid"]),
        ],
        "crm_id string, first_name string, email string, phone string, city string, country string, "
        "updated_at timestamp, _source string, _record_key string, _batch_id string, _dq_flags array<string>",
    )
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_quarantine_keeps_rows_with_reasons(spark, incremental):
    actual = incremental["lh"].read("silver", "contacts_quarantine").select("_record_key", "_dq_reasons", "_run_id")
    expected = spark.createDataFrame(
        [("|2026-03-01 10:00:00", ["crm_id_not_null"], "run1"), ("X1|2026-03-01 10:00:00", ["crm_id_format"], "run1")],
        "_record_key string, _dq_reasons array<string>, _run_id string",
    )
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_run_counts_and_dq_results(spark, incremental):
    counts = [(r["rows_in"], r["rows_out"], r["rows_quarantined"]) for r in incremental["results"]]
    # run1: 5 rows in, 2 written (C1, C2 once), 2 quarantined; run2: C1 updated only; run3: C3 inserted only.
    assert counts == [(5, 2, 2), (2, 1, 0), (3, 1, 0)]
    lh = incremental["lh"]
    actual = (
        lh.read("ops", "dq_results").where("run_id = 'run1'")
        .select("entity", "rule", "action", "failed_rows", "total_rows")
    )
    expected = spark.createDataFrame(
        [
            ("contacts", "crm_id_not_null", "quarantine", 1, 5),
            ("contacts", "crm_id_format", "quarantine", 1, 5),
            ("contacts", "updated_at_not_null", "quarantine", 0, 5),
            ("contacts", "loyalty_id_format", "warn", 0, 5),
            ("contacts", "birth_date_plausible", "warn", 0, 5),
            ("contacts", "email_invalid", "flag", 0, 5),
            ("contacts", "phone_invalid", "flag", 0, 5),
            ("contacts", "birth_date_invalid", "flag", 0, 5),
            ("contacts", "country_invalid", "flag", 0, 5),
            ("contacts", "email_opt_in_invalid", "flag", 0, 5),
            ("contacts", "sms_opt_in_invalid", "flag", 0, 5),
            ("contacts", "created_at_invalid", "flag", 0, 5),
            ("contacts", "updated_at_invalid", "flag", 0, 5),
        ],
        "entity string, rule string, action string, failed_rows long, total_rows long",
    )
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)
    runs = "('run1', 'run2', 'run3', 'run4')"
    log = lh.read("ops", "run_log").where(f"stage = 'silver' AND run_id IN {runs}").select(
        "run_id", "source", "status", "rows_in")
    expected_log = spark.createDataFrame(
        [("run1", "contacts", "success", 5), ("run2", "contacts", "success", 2), ("run3", "contacts", "success", 3),
         ("run4", "contacts", "skipped", 0)],
        "run_id string, source string, status string, rows_in long",
    )
    assert_df_equality(log, expected_log, ignore_row_order=True, ignore_nullable=True)


def test_rerun_is_a_no_op(incremental):
    lh = incremental["lh"]
    assert incremental["rerun"]["status"] == "skipped"
    assert lh.version("silver", "contacts") == incremental["version_before_rerun"]
    marks = [(r.entity, r.bronze_table, r.bronze_version) for r in lh.read("ops", "silver_watermarks").collect()]
    assert marks == [("contacts", "crm_contacts", 2)]


def test_full_rebuild_equals_incremental_history(spark, settings, cfg, incremental, tmp_path_factory):
    # All three batches in one bronze commit, late data included, built at once.
    lh = lakehouse_at(spark, settings, tmp_path_factory.mktemp("silver_full"))
    append_bronze(spark, lh, "crm_contacts", B1 + B2 + B3, CRM_SCHEMA)
    build_entity(spark, lh, cfg, "contacts", "full", full_rebuild=True)
    full = lh.read("silver", "contacts").drop("_run_id")
    inc = incremental["lh"].read("silver", "contacts").drop("_run_id")
    assert_df_equality(full, inc, ignore_row_order=True, ignore_nullable=True)
    # Rebuilding the incremental lakehouse in place gives the same table too.
    build_entity(spark, incremental["lh"], cfg, "contacts", "rebuild", full_rebuild=True)
    rebuilt = incremental["lh"].read("silver", "contacts").drop("_run_id")
    assert_df_equality(rebuilt, full, ignore_row_order=True, ignore_nullable=True)


def test_events_first_copy_wins_by_message_id(spark, settings, cfg, tmp_path_factory):
    lh = lakehouse_at(spark, settings, tmp_path_factory.mktemp("silver_events"))
    added = {"product_id": "P001", "price": "19.99", "quantity": "2", "currency": "gbp"}
    web1 = [
        segment("m1", "track", "Product Added", {"email": "Ann@X.com"}, added, None, utc(2026, 3, 1, 9), "w1", T1),
        segment("m2", "page", None, None, {"url": "https://shop/"}, None, utc(2026, 3, 1, 9, 5), "w1", T1),
        segment("m9", "bogus", None, None, None, None, utc(2026, 3, 1, 9, 6), "w1", T1),
    ]
    app1 = [segment("m3", "identify", None, {"phone": "07911 123456"}, None, "dev-1", utc(2026, 3, 1, 8), "a1", T1,
                    user="C00000001")]
    append_bronze(spark, lh, "web_events", web1, SEGMENT_SCHEMA)
    append_bronze(spark, lh, "app_events", app1, SEGMENT_SCHEMA)
    build_entity(spark, lh, cfg, "events", "e1")
    # The watermark lost (a crash after the write, before it was saved): every row is read again and
    # nothing is written. Delta may or may not commit a MERGE that inserts nothing (it did not at 1M
    # people); either way the run reports 0 rows out (the MERGE's own metrics), never e1's count.
    lh.delta("ops", "silver_watermarks").delete()
    again = build_entity(spark, lh, cfg, "events", "e1-again")
    assert (again["rows_in"], again["rows_out"]) == (4, 0)
    # A re-sent m1 (different content) arrives later: the first copy stays.
    web2 = [segment("m1", "track", "Product Added", None, None, None, utc(2026, 3, 1, 9, 1), "w2", T2)]
    append_bronze(spark, lh, "web_events", web2, SEGMENT_SCHEMA)
    second = build_entity(spark, lh, cfg, "events", "e2")
    assert (second["rows_in"], second["rows_out"]) == (1, 0)
    actual = lh.read("silver", "events").select(
        "message_id", "channel", "event_type", "event_name", "event_ts", "user_id", "device_id", "email", "phone",
        "product_id", "price", "quantity", "currency", "url", "_source", "_batch_id",
    )
    expected = spark.createDataFrame(
        [
            ("m1", "web", "track", "Product Added", utc(2026, 3, 1, 9), None, None, "ann@x.com", None, "P001",
             "19.99", 2, "GBP", None, "web_events", "w1"),
            ("m2", "web", "page", None, utc(2026, 3, 1, 9, 5), None, None, None, None, None, None, None, None,
             "https://shop/", "web_events", "w1"),
            ("m3", "app", "identify", None, utc(2026, 3, 1, 8), "C00000001", "dev-1", None, "+447911123456", None,
             None, None, None, None, "app_events", "a1"),
        ],
        "message_id string, channel string, event_type string, event_name string, event_ts timestamp, "
        "user_id string, device_id string, email string, phone string, product_id string, price string, "
        "quantity int, currency string, url string, _source string, _batch_id string",
    ).withColumn("price", F.col("price").cast("decimal(12,2)"))
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)
    quarantined = lh.read("silver", "events_quarantine").select("_record_key", "_dq_reasons")
    expected_q = spark.createDataFrame([("m9", ["event_type_known"])], "_record_key string, _dq_reasons array<string>")
    assert_df_equality(quarantined, expected_q, ignore_nullable=True)
