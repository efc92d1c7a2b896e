"""Gold: survivorship rules, traits by hand, point in time, enrichment provenance, incremental == full."""

from datetime import date, datetime
from decimal import Decimal

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from cdp_lib.gold.attach import ROW_KEY, with_customer_id
from cdp_lib.gold.build import build_gold, customer_frames, full_profiles, used_columns
from cdp_lib.gold.config import AttributeRule, GoldInput, Trait, load_gold_config, load_traits_config
from cdp_lib.gold.survivorship import survive
from tests.plans import adaptive, shuffles
from tests.silver_fixtures import lakehouse_at

CAND = "customer_id string, priority int, source string, observed_at timestamp, v0 string, _filled int"


def t(s: str) -> datetime:
    return datetime.fromisoformat(s)


@pytest.mark.parametrize(
    "rule, expected",
    [
        ("source_priority", [("c1", "crm-longest", "contacts"), ("c2", "web", "events")]),
        ("most_recent", [("c1", "web-new", "events"), ("c2", "web", "events")]),
        ("most_frequent", [("c1", "x", "events"), ("c2", "web", "events")]),
        ("most_complete", [("c1", "crm-longest", "contacts"), ("c2", "web", "events")]),
    ],
)
def test_survivorship_rules(spark, rule, expected):
    cands = spark.createDataFrame(
        [
            ("c1", 0, "contacts", t("2026-01-01 00:00:00"), "crm-longest", 1),
            ("c1", 1, "events", t("2026-03-01 00:00:00"), "web-new", 1),
            ("c1", 1, "events", t("2026-02-01 00:00:00"), "x", 1),
            ("c1", 1, "events", t("2026-02-02 00:00:00"), "x", 1),
            ("c2", 1, "events", t("2026-02-02 00:00:00"), "web", 1),
        ],
        CAND,
    )
    r = AttributeRule(
        attributes=["name"],
        rule=rule,
        candidates=[{"input": "contacts", "columns": ["a"]}, {"input": "events", "columns": ["a"]}],
    )
    actual = survive(r, cands)
    exp = spark.createDataFrame(expected, "customer_id string, name string, name__source string")
    assert_df_equality(actual, exp, ignore_row_order=True, ignore_nullable=True)


def test_group_rule_takes_all_columns_from_one_record(spark):
    cands = spark.createDataFrame(
        [
            ("c1", 0, "contacts", t("2026-03-01 00:00:00"), "1 High St", None, 1),
            ("c1", 0, "contacts", t("2026-01-01 00:00:00"), "2 Low Rd", "Leeds", 2),
        ],
        "customer_id string, priority int, source string, observed_at timestamp, v0 string, v1 string, _filled int",
    )
    r = AttributeRule(
        attributes=["street", "city"], rule="most_complete", candidates=[{"input": "contacts", "columns": ["s", "c"]}]
    )
    row = survive(r, cands).first()
    assert (row.street, row.city) == ("2 Low Rd", "Leeds")


# ------------------------------------------------------------------ a tiny lakehouse


def write(spark, lh, layer, table, rows, schema, mode="overwrite"):
    spark.createDataFrame(rows, schema).write.format("delta").mode(mode).option("overwriteSchema", "true").save(
        lh.path(layer, table)
    )


CONTACTS = (
    "crm_id string, first_name string, last_name string, email string, phone string, birth_date date, "
    "street string, city string, postcode string, country string, loyalty_id string, email_opt_in boolean, "
    "sms_opt_in boolean, updated_at timestamp"
)
EVENTS = (
    "message_id string, user_id string, anonymous_id string, device_id string, email string, phone string, "
    "first_name string, last_name string, event_type string, event_name string, event_ts timestamp"
)
ORDERS = (
    "order_id string, channel string, user_id string, email string, loyalty_id string, anonymous_id string, "
    "order_ts timestamp, total_amount decimal(12,2), status string"
)
LINES = "order_id string, line_no int, product_id string, order_ts timestamp"
TICKETS = "ticket_id string, crm_id string, email string, phone string, satisfaction int, updated_at timestamp"
ENGAGE = "event_id string, campaign_id string, email string, event_type string, event_ts timestamp"
CONSENT = (
    "record_id string, crm_id string, email string, phone string, channel string, status string, "
    "consent_source string, recorded_at timestamp"
)
IMAP = "id_type string, id_value string, customer_id string"


def _private_copy(spark, settings, template, tmp_path):
    """(lakehouse, gold config, traits config) over a copy of ``template`` in ``tmp_path``."""
    import shutil

    shutil.copytree(template, tmp_path / "lh")
    # Every build of these few customers touches most of them: the shipped recompute_all_share would
    # make each incremental build recompute every profile, and the scoped path would go untested.
    cfg = load_gold_config(settings.conf_dir).model_copy(update={"recompute_all_share": 1.0})
    return lakehouse_at(spark, settings, tmp_path / "lh"), cfg, load_traits_config(cfg.inputs, settings.conf_dir)


@pytest.fixture
def gold_lake(spark, settings, tmp_path, _gold_template):
    """A private copy of the tiny lakehouse below: (lakehouse, gold config, traits config).

    Written once per module and copied per test (a file copy, against 13 Delta writes)."""
    return _private_copy(spark, settings, _gold_template, tmp_path)


@pytest.fixture(scope="module")
def _gold_built(spark, settings, tmp_path_factory, _gold_template):
    """The tiny lakehouse after its first full build ``g1`` as of 2026-03-05: (folder, that build's summary).

    Built once per module: the tests that start from this build copy it instead of each repeating it."""
    root = tmp_path_factory.mktemp("gold_built")
    lh, cfg, traits = _private_copy(spark, settings, _gold_template, root)
    return lh.root, build_gold(spark, lh, cfg, traits, "g1", as_of=t("2026-03-05 00:00:00"))


@pytest.fixture
def gold_built(spark, settings, tmp_path, _gold_built):
    """A private copy of the lakehouse after build ``g1``: (lakehouse, gold config, traits config, g1's summary)."""
    root, summary = _gold_built
    return (*_private_copy(spark, settings, root, tmp_path), summary)


@pytest.fixture(scope="module")
def _gold_template(spark, settings, tmp_path_factory):
    root = tmp_path_factory.mktemp("gold_template")
    lh = lakehouse_at(spark, settings, root)
    write(
        spark,
        lh,
        "gold",
        "identity_map",
        [
            ("crm_id", "C1", "cus_1"),
            ("email", "ann@x.com", "cus_1"),
            ("email", "ann.new@x.com", "cus_1"),
            ("anonymous_id", "a1", "cus_1"),
            ("loyalty_id", "L1", "cus_1"),
            ("email", "bob@y.com", "cus_2"),
            ("phone", "+447700900002", "cus_2"),
        ],
        IMAP,
    )
    write(
        spark,
        lh,
        "silver",
        "contacts",
        [
            (
                "C1",
                "Ann",
                "Lee",
                "ann@x.com",
                "+447700900001",
                date(1990, 5, 1),
                "1 High St",
                "Leeds",
                "LS1 1AA",
                "GB",
                "L1",
                True,
                False,
                t("2026-01-10 09:00:00"),
            ),
        ],
        CONTACTS,
    )
    write(
        spark,
        lh,
        "silver",
        "events",
        [
            ("m1", None, "a1", None, None, None, None, None, "track", "Product Added", t("2026-03-01 10:00:00")),
            ("m2", "C1", "a1", None, "ann.new@x.com", None, "Annie", "Lee", "identify", None, t("2026-03-01 10:05:00")),
            ("m3", "C1", None, None, None, None, None, None, "track", "Product Added", t("2026-03-02 10:00:00")),
            ("m4", "C1", None, None, None, None, None, None, "track", "Order Completed", t("2026-03-02 10:20:00")),
            (
                "m5",
                None,
                None,
                None,
                "bob@y.com",
                None,
                None,
                None,
                "track",
                "Checkout Started",
                t("2026-02-20 08:00:00"),
            ),
        ],
        EVENTS,
    )
    write(
        spark,
        lh,
        "silver",
        "orders",
        [
            ("o1", "web", "C1", None, None, None, t("2026-01-15 12:00:00"), Decimal("30.00"), "placed"),
            ("o2", "store", None, None, "L1", None, t("2026-03-02 10:20:00"), Decimal("50.00"), "placed"),
            ("o3", "web", "C1", None, None, None, t("2026-03-03 10:00:00"), Decimal("99.00"), "cancelled"),
            ("o4", "web", None, "bob@y.com", None, None, t("2026-02-01 09:00:00"), Decimal("10.00"), "placed"),
        ],
        ORDERS,
    )
    write(
        spark,
        lh,
        "silver",
        "order_lines",
        [
            ("o1", 1, "P1", t("2026-01-15 12:00:00")),
            ("o2", 1, "P2", t("2026-03-02 10:20:00")),
            ("o2", 2, "P2", t("2026-03-02 10:20:00")),
            ("o4", 1, "P1", t("2026-02-01 09:00:00")),
        ],
        LINES,
    )
    write(
        spark,
        lh,
        "silver",
        "support_tickets",
        [
            ("T1", None, "bob@y.com", "+447700900002", 4, t("2026-02-02 00:00:00")),
            ("T2", None, "bob@y.com", "+447700900002", 2, t("2026-02-03 00:00:00")),
        ],
        TICKETS,
    )
    write(
        spark,
        lh,
        "silver",
        "email_engagement",
        [
            ("e1", "k1", "ann@x.com", "sent", t("2026-02-01 00:00:00")),
            ("e2", "k2", "ann@x.com", "sent", t("2026-02-08 00:00:00")),
            ("e3", "k1", "ann@x.com", "open", t("2026-02-01 01:00:00")),
            ("e4", "k1", "ann@x.com", "open", t("2026-02-01 02:00:00")),
        ],
        ENGAGE,
    )
    write(
        spark,
        lh,
        "silver",
        "consent",
        [
            ("r1", "C1", None, None, "email", "opt_out", "unsubscribe_link", t("2026-02-15 00:00:00")),
            ("r2", None, "bob@y.com", None, "ads", "opt_in", "web_form", t("2026-01-01 00:00:00")),
        ],
        CONSENT,
    )
    write(spark, lh, "bronze", "ref_products", [("P1", "shoes"), ("P2", "bags")], "product_id string, category string")
    write(
        spark,
        lh,
        "bronze",
        "ref_postcodes",
        [("LS1 1AA", "Yorkshire", "53.8", "-1.5")],
        "postcode string, region string, latitude string, longitude string",
    )
    import hashlib

    h = hashlib.sha256(b"ann.new@x.com").hexdigest()
    write(
        spark,
        lh,
        "bronze",
        "enrichment",
        [(h, "50-75k", "yes", "travel|food", "2")],
        "email_sha256 string, income_band string, home_owner string, interests string, household_size string",
    )
    return root


def profile_rows(lh):
    return {r.customer_id: r for r in lh.read("gold", "customer_profile").collect()}


def test_profile_end_to_end(spark, gold_built):
    lh, cfg, traits, summary = gold_built  # build g1 as of 2026-03-05, on a copy of _gold_template
    assert summary["mode"] == "full" and summary["rows_out"] == 2
    p = profile_rows(lh)
    ann, bob = p["cus_1"], p["cus_2"]
    # survivorship
    assert (ann.first_name, ann.last_name) == ("Ann", "Lee")  # CRM has priority over web traits
    assert ann.email == "ann.new@x.com"  # most recent
    assert ann.emails == ["ann.new@x.com", "ann@x.com"]
    assert (ann.street, ann.city, ann.postcode, ann.country) == ("1 High St", "Leeds", "LS1 1AA", "GB")
    assert ann.birth_date == date(1990, 5, 1)
    assert bob.phone == "+447700900002" and bob.first_name is None
    assert ann.first_seen_at == t("2026-01-10 09:00:00") and ann.last_seen_at == t("2026-03-03 10:00:00")
    assert ann.sources == ["consent", "contacts", "email_engagement", "events", "order_lines", "orders"]
    # consent: the unsubscribe (Feb) is later than the CRM opt-in (Jan)
    assert (ann.consent_email, ann.consent_email_source) == (False, "unsubscribe_link")
    assert (ann.consent_sms, ann.consent_ads) == (False, None)
    assert (bob.consent_ads, bob.consent_email) == (True, None)
    # traits (hand-computed): o3 is cancelled and does not count
    assert (ann.order_count, ann.total_spend, ann.avg_order_value) == (2, Decimal("80.00"), Decimal("40.00"))
    assert ann.first_order_at == t("2026-01-15 12:00:00") and ann.last_order_at == t("2026-03-02 10:20:00")
    assert ann.days_since_last_order == 3 and ann.orders_90d == 2
    assert ann.favourite_category == "bags" and bob.favourite_category == "shoes"
    assert ann.preferred_channel == "store"  # one web, one store: ties go to the smaller value
    assert (ann.emails_sent, ann.emails_opened, ann.email_open_rate, ann.email_click_rate) == (2, 1, 0.5, 0.0)
    assert (bob.support_ticket_count, bob.avg_satisfaction) == (2, 3.0)
    assert ann.events_30d == 4
    # m1 (cart add 03-01 10:00) followed by no order within 1h -> abandoned; m3 was followed by m4
    assert ann.last_abandoned_cart_at == t("2026-03-01 10:00:00")
    assert bob.last_abandoned_cart_at == t("2026-02-20 08:00:00")
    # rfm over the two customers: ann more recent, more frequent, bigger spender
    assert (ann.rfm_score, bob.rfm_score) == ("555", "111")
    # enrichment + provenance
    assert (ann.region, ann.latitude) == ("Yorkshire", 53.8)
    assert ann.income_band == "50-75k" and bob.income_band is None
    assert "income_band:enrichment" in ann.enriched_attributes and "region:ref_postcodes" in ann.enriched_attributes
    assert bob.enriched_attributes == []
    assert spark.sql("select count(*) from gold.customer_profile").first()[0] >= 2


def test_point_in_time_has_no_leakage(spark, gold_lake):
    lh, cfg, traits = gold_lake
    build_gold(spark, lh, cfg, traits, "g1", as_of=t("2026-02-10 00:00:00"), full=True)
    ann = profile_rows(lh)["cus_1"]
    assert (ann.order_count, ann.total_spend, ann.last_order_at) == (1, Decimal("30.00"), t("2026-01-15 12:00:00"))
    assert ann.days_since_last_order == 26
    assert ann.consent_email is True  # the Feb-15 opt-out had not happened yet
    assert ann.last_abandoned_cart_at is None and ann.events_30d is None
    assert ann.email == "ann@x.com"


def _comparable(lh):
    return lh.read("gold", "customer_profile").drop("updated_run_id")


def _full_rebuild(spark, lh, cfg, traits, as_of):
    """The profiles a full build of ``lh``'s current inputs writes (comparable with the table's)."""
    return full_profiles(spark, lh, cfg, traits, as_of, "full").drop("updated_run_id")


def test_incremental_equals_full(spark, gold_built):
    lh, cfg, traits, _ = gold_built  # built g1 as of 2026-03-05
    # day 2: a new order for bob, ann's CRM record renamed, a new customer; time moves on 40 days
    write(
        spark,
        lh,
        "silver",
        "orders",
        [("o5", "web", None, "bob@y.com", None, None, t("2026-04-01 09:00:00"), Decimal("70.00"), "placed")],
        ORDERS,
        mode="append",
    )
    write(spark, lh, "gold", "identity_map", [("email", "cy@z.com", "cus_3")], IMAP, mode="append")
    write(
        spark,
        lh,
        "silver",
        "email_engagement",
        [("e9", "k3", "cy@z.com", "sent", t("2026-04-02 00:00:00"))],
        ENGAGE,
        mode="append",
    )
    summary = build_gold(spark, lh, cfg, traits, "g2", as_of=t("2026-04-14 00:00:00"))
    assert summary["mode"] == "incremental"
    # bob (new order), cy (new), ann (events leave the 30-day window; orders leave 90d? no) recomputed
    assert summary["customers_recomputed"] == 3
    incremental = _comparable(lh)
    p = {r.customer_id: r for r in incremental.collect()}
    assert p["cus_2"].order_count == 2 and p["cus_1"].events_30d == 0 and p["cus_3"].emails_sent == 1
    assert p["cus_1"].days_since_last_order == 43
    # a full build of the same inputs gives the same rows, through
    # the shuffle-join lookup of the identity map (the incremental run broadcast it)
    full = _full_rebuild(spark, lh, cfg.model_copy(update={"broadcast_map_rows": 0}), traits, t("2026-04-14 00:00:00"))
    assert_df_equality(incremental, full, ignore_row_order=True, ignore_column_order=True, ignore_nullable=True)
    # re-running with nothing new changes nothing: no commit at all
    v = lh.version("gold", "customer_profile")
    assert build_gold(spark, lh, cfg, traits, "g3", as_of=t("2026-04-14 00:00:00"))["rows_changed"] == 0
    assert lh.version("gold", "customer_profile") == v
    # a customer leaves the map (a split or an erasure): its profile row is deleted, the others stay
    kept = lh.read("gold", "identity_map").where(F.col("customer_id") != "cus_3").localCheckpoint()
    kept.write.format("delta").mode("overwrite").save(lh.path("gold", "identity_map"))
    v = lh.version("gold", "customer_profile")
    assert build_gold(spark, lh, cfg, traits, "g4", as_of=t("2026-04-14 00:00:00"))["rows_changed"] == 1
    assert sorted(r.customer_id for r in lh.read("gold", "customer_profile").collect()) == ["cus_1", "cus_2"]
    feed = (spark.read.format("delta").option("readChangeFeed", "true").option("startingVersion", v + 1)
            .load(lh.path("gold", "customer_profile")))
    assert [(r.customer_id, r._change_type) for r in feed.collect()] == [("cus_3", "delete")]


def test_more_touched_customers_than_the_share_recompute_every_profile(spark, settings, tmp_path, _gold_built):
    # bob's new order touches one customer of two: at a share under 1/2 every profile is recomputed,
    # at 1/2 only bob's; both write the same table and merge the same rows: bob's, and ann's (every
    # build re-projects the population-wide RFM scores and the as-of-relative columns of all rows).
    root, _ = _gold_built  # built g1 as of 2026-03-05
    tables, changed = [], []
    for share, expected in ((0.49, ("full", 1, 2)), (0.5, ("incremental", 1, 1))):
        lh, cfg, traits = _private_copy(spark, settings, root, tmp_path / str(share))
        write(spark, lh, "silver", "orders",
              [("o5", "web", None, "bob@y.com", None, None, t("2026-03-05 06:00:00"), Decimal("70.00"), "placed")],
              ORDERS, mode="append")
        cfg = cfg.model_copy(update={"recompute_all_share": share})
        summary = build_gold(spark, lh, cfg, traits, "g2", as_of=t("2026-03-05 07:00:00"))
        assert (summary["mode"], summary["customers_touched"], summary["customers_recomputed"]) == expected
        changed.append(summary["rows_changed"])
        tables.append(_comparable(lh))
    assert {r.customer_id: r.order_count for r in tables[0].collect()}["cus_2"] == 2
    assert changed == [2, 2]
    assert_df_equality(*tables, ignore_row_order=True, ignore_column_order=True, ignore_nullable=True)


def test_a_change_feed_that_cannot_be_read_recomputes_every_profile(spark, gold_built, caplog):
    # bob's new order is written while the orders table records no change data (as after a feed
    # switched off for a while, or versions cleaned up): the build cannot know who changed, so it
    # recomputes everyone instead of failing or missing bob
    lh, cfg, traits, _ = gold_built  # built g1 as of 2026-03-05
    path = lh.path("silver", "orders")
    spark.sql(f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES (delta.enableChangeDataFeed = false)")
    write(spark, lh, "silver", "orders",
          [("o5", "web", None, "bob@y.com", None, None, t("2026-03-05 06:00:00"), Decimal("70.00"), "placed")],
          ORDERS, mode="append")
    spark.sql(f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES (delta.enableChangeDataFeed = true)")
    with caplog.at_level("WARNING", logger="cdp_lib.gold.build"):
        summary = build_gold(spark, lh, cfg, traits, "g2", as_of=t("2026-03-05 07:00:00"))
    assert "gold: no change feed for silver.orders versions" in caplog.text
    assert (summary["mode"], summary["customers_touched"]) == ("full", None)
    assert {r.customer_id: r.order_count for r in _comparable(lh).collect()}["cus_2"] == 2
    assert_df_equality(_comparable(lh), _full_rebuild(spark, lh, cfg, traits, t("2026-03-05 07:00:00")),
                       ignore_row_order=True, ignore_column_order=True, ignore_nullable=True)


def test_a_row_updated_to_another_customer_recomputes_both(spark, gold_built):
    # An order whose e-mail is corrected moves from bob to ann: the change feed's pre-image names
    # the customer it leaves, the post-image the one it joins; both profiles must be recomputed.
    from delta.tables import DeltaTable

    lh, cfg, traits, _ = gold_built  # built g1 as of 2026-03-05
    assert {r.customer_id: r.order_count for r in lh.read("gold", "customer_profile").collect()}["cus_2"] == 1
    DeltaTable.forPath(spark, lh.path("silver", "orders")).update(
        "order_id = 'o4'", {"email": F.lit("ann@x.com")})
    summary = build_gold(spark, lh, cfg, traits, "g2", as_of=t("2026-03-05 01:00:00"))
    assert summary["mode"] == "incremental"
    incremental = _comparable(lh)
    assert {r.customer_id: r.order_count for r in incremental.collect()}["cus_2"] is None  # no order left
    full = _full_rebuild(spark, lh, cfg, traits, t("2026-03-05 01:00:00"))
    assert_df_equality(incremental, full, ignore_row_order=True, ignore_column_order=True, ignore_nullable=True)


def _last_commit(lh):
    return lh.delta("gold", "customer_profile").history(1).select("version", "operation", "operationMetrics").first()


def test_incremental_merges_mark_replaced_profiles_deleted_and_are_compacted_in_time(spark, gold_built):
    # Deletion vectors: a MERGE writes the changed profiles only and marks the rows they replace
    # deleted, instead of rewriting every profile in their files; every second merge is compacted.
    lh, cfg, traits, _ = gold_built  # built g1 as of 2026-03-05
    cfg = cfg.model_copy(update={"compact_every": 2})

    def same(table, full):  # an unchanged profile keeps the as-of time of the build that last changed it
        assert_df_equality(table.drop("as_of"), full.drop("as_of"), ignore_row_order=True, ignore_column_order=True,
                           ignore_nullable=True)

    detail = lh.delta("gold", "customer_profile").detail().select("properties").first()[0]
    assert detail["delta.enableDeletionVectors"] == "true"  # set when the first build wrote the table
    ticket = "T3", None, "bob@y.com", None, 5, t("2026-03-04 09:00:00")  # changes no population-wide score
    write(spark, lh, "silver", "support_tickets", [ticket], TICKETS, mode="append")
    summary = build_gold(spark, lh, cfg, traits, "g2", as_of=t("2026-03-05 01:00:00"))
    assert (summary["mode"], summary["rows_changed"], summary["compacted"]) == ("incremental", 1, False)
    merge = _last_commit(lh)
    assert merge.operation == "MERGE" and int(merge.operationMetrics["numTargetDeletionVectorsAdded"]) == 1
    assert merge.operationMetrics["numTargetRowsCopied"] == "0"
    full = _full_rebuild(spark, lh, cfg, traits, t("2026-03-05 01:00:00"))
    same(_comparable(lh), full)
    # the second merge since the table was written: compacted (a commit with no change of data). Two
    # lines added to ann's first order: found through the order (order lines have no identifier)
    lines = [("o1", n, "P1", t("2026-01-15 12:00:00")) for n in (2, 3)]
    write(spark, lh, "silver", "order_lines", lines, LINES, mode="append")
    summary = build_gold(spark, lh, cfg, traits, "g3", as_of=t("2026-03-05 02:00:00"))
    assert (summary["rows_changed"], summary["compacted"]) == (1, True)
    optimize = _last_commit(lh)
    assert optimize.operation == "OPTIMIZE" and optimize.version == merge.version + 2
    assert lh.delta("gold", "customer_profile").detail().select("numFiles").first()[0] == 1
    profiles = {r.customer_id: r for r in _comparable(lh).collect()}
    assert (profiles["cus_1"].favourite_category, profiles["cus_2"].support_ticket_count) == ("shoes", 3)
    merged = lh.read("gold", "customer_profile", version=merge.version + 1)  # compaction changed no row
    assert_df_equality(lh.read("gold", "customer_profile"), merged, ignore_row_order=True)
    # the change feed carries the merge's changes, none of the compaction's rewrite
    feed = (spark.read.format("delta").option("readChangeFeed", "true").option("startingVersion", merge.version + 1)
            .load(lh.path("gold", "customer_profile")))
    assert sorted((r.customer_id, r._change_type, r._commit_version) for r in feed.collect()) == [
        ("cus_1", "update_postimage", merge.version + 1), ("cus_1", "update_preimage", merge.version + 1)]
    # nothing new: no merge, no compaction, no commit
    summary = build_gold(spark, lh, cfg, traits, "g4", as_of=t("2026-03-05 02:00:00"))
    assert (summary["rows_changed"], summary["compacted"]) == (0, False)
    assert lh.version("gold", "customer_profile") == optimize.version
    # switched off: the table says so, and a MERGE marks nothing deleted (it rewrites the file)
    ticket = "T4", None, "bob@y.com", None, 1, t("2026-03-05 02:30:00")
    write(spark, lh, "silver", "support_tickets", [ticket], TICKETS, mode="append")
    off = cfg.model_copy(update={"deletion_vectors": False})
    assert build_gold(spark, lh, off, traits, "g5", as_of=t("2026-03-05 03:00:00"))["rows_changed"] == 1
    detail = lh.delta("gold", "customer_profile").detail().select("properties").first()[0]
    assert detail["delta.enableDeletionVectors"] == "false"
    merge = _last_commit(lh)
    assert merge.operation == "MERGE" and merge.operationMetrics["numTargetDeletionVectorsAdded"] == "0"


@pytest.mark.parametrize("broadcast", [True, False])
def test_rows_attach_to_the_customer_of_their_first_mapped_identifier(spark, broadcast):
    inp = GoldInput(table="silver.events", time="ts", identifiers={"crm_id": "user_id", "email": "email"})
    imap = spark.createDataFrame(
        [("crm_id", "C1", "cus_1"), ("email", "bob@y.com", "cus_2"), ("email", "C1", "cus_9")], IMAP)
    rows = spark.createDataFrame([
        ("r1", "C1", "bob@y.com"),  # both mapped: the first declared identifier wins
        ("r2", None, "bob@y.com"),
        ("r3", "C404", "bob@y.com"),  # first not mapped: the next one
        ("r4", "C404", None),  # nothing mapped
        ("r5", "C1", "bob@y.com"),
        ("r5", "C1", "bob@y.com"),  # identical rows keep both copies
    ], "rid string, user_id string, email string")
    actual = with_customer_id(rows, inp, imap, broadcast).drop(ROW_KEY)
    expected = spark.createDataFrame([
        ("r1", "C1", "bob@y.com", "cus_1"), ("r2", None, "bob@y.com", "cus_2"), ("r3", "C404", "bob@y.com", "cus_2"),
        ("r4", "C404", None, None), ("r5", "C1", "bob@y.com", "cus_1"), ("r5", "C1", "bob@y.com", "cus_1"),
    ], "rid string, user_id string, email string, customer_id string")
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_rfm_scores_are_percent_rank_quantiles_with_ties_and_missing_values(spark):
    from cdp_lib.gold.config import Trait, TraitsConfig
    from cdp_lib.gold.traits import with_rfm

    cfg = TraitsConfig(traits=[Trait(name="rfm", kind="rfm", recency="last", frequency="n", monetary="spend",
                                     buckets=5)])
    t = datetime(2026, 3, 1)
    profile = spark.createDataFrame(
        [("a", t, 10, 1.0, "x"), ("b", t, 20, 2.0, "y"), ("c", t, 20, 3.0, "z"), ("d", t, 30, 4.0, "w"),
         ("e", None, None, None, "v")],
        "customer_id string, last timestamp, n int, spend double, other string",
    )
    out = {r.customer_id: r for r in with_rfm(profile, cfg).collect()}
    # frequency: ranks 1, 2, 2, 4 of 4 -> percent ranks 0, 1/3, 1/3, 1 -> scores 1, 2, 2, 5 (capped)
    assert [out[c].rfm_f for c in "abcde"] == [1, 2, 2, 5, None]
    assert [out[c].rfm_m for c in "abcde"] == [1, 2, 4, 5, None]
    assert [out[c].rfm_r for c in "abcde"] == [1, 1, 1, 1, None]  # all tied
    assert [out[c].rfm for c in "abcde"] == ["111", "122", "124", "155", None]
    assert out["e"].other == "v" and len(out) == 5


def test_every_gold_input_is_partitioned_by_customer(spark, gold_lake):
    """Also the input that reaches its customers through another input's rows (order lines via orders)."""
    lh, cfg, traits = gold_lake
    with adaptive(spark):  # as shipped
        people, frames = customer_frames(lh, cfg, traits, datetime(2026, 3, 5))
        assert "order_lines" in frames and cfg.inputs["order_lines"].via is not None
        for name, frame in {"identity_map": people, **frames}.items():
            assert shuffles(frame.groupBy("customer_id").count()) == 0, name


def test_inputs_carry_only_the_columns_gold_uses(gold_lake):
    _, cfg, traits = gold_lake
    events = ["message_id", "event_ts", "event_name", "user_id", "email", "device_id", "anonymous_id", "phone",
              "first_name", "last_name", "Page_URL", "_row_hash", "_dq_flags", "_record_key"]
    kept = used_columns(cfg, traits, "events", events)
    # time, identifiers, survivorship and collected values, the abandoned-cart event column
    assert kept == ["event_ts", "event_name", "user_id", "email", "device_id", "anonymous_id", "phone",
                    "first_name", "last_name"]
    # orders: what traits aggregate (also inside SQL expressions) and the key order lines attach through
    orders = ["order_id", "order_ts", "total_amount", "status", "channel", "user_id", "Currency", "_source"]
    assert used_columns(cfg, traits, "orders", orders) == ["order_id", "order_ts", "total_amount", "status",
                                                           "channel", "user_id"]
    no_traits = traits.model_copy(update={"traits": []})
    assert "order_id" in used_columns(cfg, no_traits, "orders", orders)  # order lines' via key, named nowhere else
    assert "total_amount" not in used_columns(cfg, no_traits, "orders", orders)


def test_columns_in_multi_line_or_star_expressions_are_kept(gold_lake):
    _, cfg, traits = gold_lake
    cols = ["order_id", "order_ts", "user_id", "net", "tax", "Currency"]
    multi_line = Trait(name="taxed", input="orders", expr="sum(\n\tnet\n  + tax)")
    assert used_columns(cfg, traits.model_copy(update={"traits": [multi_line]}), "orders", cols) == [
        "order_id", "order_ts", "user_id", "net", "tax"]
    star = Trait(name="rows", input="orders", expr="count(distinct hash(*))")
    assert used_columns(cfg, traits.model_copy(update={"traits": [star]}), "orders", cols) == cols


def test_a_customer_with_no_input_row_has_no_sources(spark, gold_lake):
    lh, cfg, traits = gold_lake
    write(spark, lh, "gold", "identity_map", [("email", "nobody@z.com", "cus_9")], IMAP, mode="append")
    build_gold(spark, lh, cfg, traits, "g1", as_of=t("2026-03-05 00:00:00"))
    nobody = profile_rows(lh)["cus_9"]
    assert (nobody.sources, nobody.first_seen_at, nobody.last_seen_at, nobody.order_count) == (None, None, None, None)
    assert profile_rows(lh)["cus_1"].sources[0] == "consent"


@pytest.mark.parametrize("broadcast_map_rows", [1000, 0])
def test_an_incremental_run_attaches_rows_by_the_whole_map(spark, gold_lake, broadcast_map_rows):
    # T3 carries ann's CRM id and bob's phone: it is ann's (the first declared identifier). When only
    # bob is recomputed, T3 must not fall through to bob's phone because ann is out of scope.
    lh, cfg, traits = gold_lake
    cfg = cfg.model_copy(update={"broadcast_map_rows": broadcast_map_rows})
    write(spark, lh, "silver", "support_tickets", [("T3", "C1", None, "+447700900002", 5, t("2026-02-04 00:00:00"))],
          TICKETS, mode="append")
    build_gold(spark, lh, cfg, traits, "g1", as_of=t("2026-03-05 00:00:00"))
    write(spark, lh, "silver", "orders",
          [("o5", "web", None, "bob@y.com", None, None, t("2026-03-05 09:00:00"), Decimal("70.00"), "placed")],
          ORDERS, mode="append")
    summary = build_gold(spark, lh, cfg, traits, "g2", as_of=t("2026-03-05 10:00:00"))
    assert summary["mode"] == "incremental" and summary["customers_recomputed"] == 1  # bob only
    incremental = _comparable(lh)
    counts = {r.customer_id: r.support_ticket_count for r in incremental.collect()}
    assert (counts["cus_1"], counts["cus_2"]) == (1, 2)
    full = _full_rebuild(spark, lh, cfg, traits, t("2026-03-05 10:00:00"))
    assert_df_equality(incremental, full, ignore_row_order=True, ignore_column_order=True, ignore_nullable=True)


def test_a_row_whose_identifier_is_mapped_then_unmapped_moves_between_customers(spark, gold_lake):
    # T3 carries a work e-mail and bob's phone. While the e-mail is unmapped T3 is bob's; once the map
    # gives the e-mail to ann, T3 is ann's (e-mail comes before phone), and bob's again when it is unmapped.
    # Only ann's map rows change, yet bob's profile changes too: he gains or loses T3.
    from delta.tables import DeltaTable

    lh, cfg, traits = gold_lake
    write(spark, lh, "silver", "support_tickets",
          [("T3", None, "ann.work@x.com", "+447700900002", 5, t("2026-02-04 00:00:00"))], TICKETS, mode="append")
    build_gold(spark, lh, cfg, traits, "g1", as_of=t("2026-03-05 00:00:00"))

    def tickets():
        counts = {r.customer_id: r.support_ticket_count for r in lh.read("gold", "customer_profile").collect()}
        return counts["cus_1"], counts["cus_2"]

    assert tickets() == (None, 3)
    steps = [
        ("mapped", lambda: write(spark, lh, "gold", "identity_map", [("email", "ann.work@x.com", "cus_1")], IMAP,
                                 mode="append"), (1, 2)),
        # a delete, not an overwrite: its change feed names only the row deleted
        ("unmapped", lambda: DeltaTable.forPath(spark, lh.path("gold", "identity_map")).delete(
            "id_value = 'ann.work@x.com'"), (None, 3)),
    ]
    for hour, (step, change, expected) in enumerate(steps, start=1):
        change()
        as_of = t(f"2026-03-05 0{hour}:00:00")
        assert build_gold(spark, lh, cfg, traits, f"g-{step}", as_of=as_of)["mode"] == "incremental", step
        assert tickets() == expected, step
        assert_df_equality(_comparable(lh), _full_rebuild(spark, lh, cfg, traits, as_of), ignore_row_order=True,
                           ignore_column_order=True, ignore_nullable=True)


def test_a_changed_reference_table_recomputes_every_profile(spark, gold_built):
    # bob's e-mail gets a third-party row: nothing of bob's changed, but his enrichment did
    import hashlib

    lh, cfg, traits, _ = gold_built  # built g1 as of 2026-03-05
    assert profile_rows(lh)["cus_2"].income_band is None
    h = hashlib.sha256(b"bob@y.com").hexdigest()
    write(spark, lh, "bronze", "enrichment", [(h, "25-50k", "no", "golf", "1")],
          "email_sha256 string, income_band string, home_owner string, interests string, household_size string",
          mode="append")
    summary = build_gold(spark, lh, cfg, traits, "g2", as_of=t("2026-03-05 00:00:00"))
    assert (summary["mode"], summary["customers_recomputed"], summary["rows_changed"]) == ("full", 2, 1)
    assert profile_rows(lh)["cus_2"].income_band == "25-50k"
    # the next run sees the same reference versions again: incremental, nothing to do
    assert build_gold(spark, lh, cfg, traits, "g3", as_of=t("2026-03-05 00:00:00"))["mode"] == "incremental"
