"""Segments config, evaluation (profile + events) and gold.segment_membership history."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import types as T

from cdp_lib.activation.membership import (
    MEMBERSHIP_SCHEMA,
    current_members,
    members_at,
    merge_membership,
    segment_size_over_time,
)
from cdp_lib.activation.segments import (
    CUSTOMER_EVENTS_SCHEMA,
    PROFILE_CONTRACT,
    EventCondition,
    SegmentsConfig,
    customer_events,
    evaluate_segments,
    event_condition_members,
    load_segments,
)
from cdp_lib.errors import ConfigError

PROJECT = Path(__file__).resolve().parent.parent
AS_OF = datetime(2026, 3, 10, 12, 0, tzinfo=timezone.utc)


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


def write_segments(conf: Path, body: str) -> Path:
    conf.mkdir(parents=True, exist_ok=True)
    (conf / "segments.yaml").write_text(body)
    return conf


# --- config -------------------------------------------------------------------------


def test_shipped_segments_validate_against_the_profile_contract(spark):
    config = load_segments(spark, PROJECT / "conf", PROFILE_CONTRACT)
    assert "cart_abandoners" in [s.name for s in config.segments]


@pytest.mark.parametrize(
    ("condition", "fragments"),
    [
        ("ordr_count > 1", ["'vip'", "invalid condition", "ordr_count", "UNRESOLVED_COLUMN"]),
        ("order_count >", ["'vip'", "invalid condition", "PARSE_SYNTAX_ERROR"]),
        ("order_count + 1", ["'vip'", "must be boolean", "bigint"]),
        ("email > date'2020-01-01' and nosuch(email)", ["'vip'", "invalid condition"]),
    ],
)
def test_invalid_condition_is_rejected_naming_segment_and_quoting_spark(spark, tmp_path, condition, fragments):
    conf = write_segments(
        tmp_path,
        "segments:\n  - name: ok\n    condition: order_count > 0\n"
        f"  - name: vip\n    condition: \"{condition}\"\n",
    )
    with pytest.raises(ConfigError) as err:
        load_segments(spark, conf, PROFILE_CONTRACT)
    message = str(err.value)
    assert "segments.yaml: segments.1.condition" in message
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("segments:\n  - name: a\n    condition: 'true'\n    events: {did: X, within: 3 days}\n",
         "segments.0.events.within"),
        ("segments:\n  - name: A-b\n    condition: 'true'\n", "segments.0.name"),
        ("segments:\n  - name: a\n    condition: 'true'\n  - name: a\n    condition: 'true'\n", "defined twice"),
        ("segments:\n  - name: a\n    condition: 'true'\n    limit: 3\n", "segments.0.limit: unknown key"),
    ],
)
def test_malformed_segments_yaml_names_the_key(spark, tmp_path, body, fragment):
    with pytest.raises(ConfigError, match=fragment):
        load_segments(spark, write_segments(tmp_path, body), PROFILE_CONTRACT)


# --- evaluation ---------------------------------------------------------------------

PROFILE_SCHEMA = T.StructType(
    [
        T.StructField("customer_id", T.StringType(), False),
        T.StructField("email", T.StringType()),
        T.StructField("order_count", T.LongType()),
        T.StructField("total_spend", T.DecimalType(12, 2)),
        T.StructField("consent_email", T.BooleanType()),
    ]
)


@pytest.fixture(scope="module")
def profile(spark):
    rows = [
        ("c1", "a@x.com", 5, Decimal("900.00"), True),
        ("c2", "b@x.com", 0, Decimal("0.00"), None),
        ("c3", None, None, None, False),
        ("c4", "d@x.com", 1, Decimal("20.00"), True),
    ]
    return spark.createDataFrame(rows, PROFILE_SCHEMA)


@pytest.fixture(scope="module")
def events(spark):
    rows = [
        ("c1", "Product Added", ts("2026-03-10T01:00:00")),   # in window, ordered after -> out
        ("c1", "Order Completed", ts("2026-03-10T02:00:00")),
        ("c2", "Product Added", ts("2026-03-09T11:00:00")),   # too old (window opens 03-09 12:00)
        ("c2", "Product Added", ts("2026-03-10T12:30:00")),   # after as_of: ignored
        ("c3", "Order Completed", ts("2026-03-08T00:00:00")),  # old order, then an add -> in
        ("c3", "Product Added", ts("2026-03-10T11:59:59")),
        ("c4", "Product Added", ts("2026-03-10T10:00:00")),   # order after as_of does not count -> in
        ("c4", "Order Completed", ts("2026-03-10T13:00:00")),
        ("c4", "Product Viewed", ts("2026-03-10T10:00:00")),
    ]
    return spark.createDataFrame(rows, CUSTOMER_EVENTS_SCHEMA)


def test_event_condition_added_to_cart_and_no_order_since(spark, events):
    cond = EventCondition(did="Product Added", within="24h", not_since="Order Completed")
    actual = event_condition_members(events, cond, AS_OF)
    expected = spark.createDataFrame([("c3",), ("c4",)], "customer_id string")
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_event_condition_without_not_since(spark, events):
    cond = EventCondition(did="Product Added", within="24h")
    actual = event_condition_members(events, cond, AS_OF)
    expected = spark.createDataFrame([("c1",), ("c3",), ("c4",)], "customer_id string")
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_evaluate_segments_combines_profile_and_event_conditions(spark, profile, events):
    config = SegmentsConfig.model_validate(
        {
            "segments": [
                {"name": "buyers", "condition": "order_count >= 1"},
                # null consent is not true: the null condition counts as false
                {"name": "emailable_carts", "condition": "consent_email",
                 "events": {"did": "Product Added", "within": "24h", "not_since": "Order Completed"}},
                {"name": "big", "condition": "total_spend > 100"},
            ]
        }
    )
    actual = evaluate_segments(profile, events, config, AS_OF)
    expected = spark.createDataFrame(
        [("buyers", "c1"), ("buyers", "c4"), ("emailable_carts", "c4"), ("big", "c1")],
        "segment string, customer_id string",
    )
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_customer_events_links_user_id_first_then_cookie(spark):
    events = spark.createDataFrame(
        [
            ("anon1", "U1", "Product Added", ts("2026-03-10T01:00:00")),
            ("anon2", None, "Product Added", ts("2026-03-10T02:00:00")),
            ("anon9", None, "Product Viewed", ts("2026-03-10T03:00:00")),  # unknown person: dropped
            ("anon2", "U1", "Order Completed", ts("2026-03-10T04:00:00")),  # user id wins over cookie
        ],
        "anonymous_id string, user_id string, event_name string, event_ts timestamp",
    )
    identity = spark.createDataFrame(
        [("user_id", "U1", "cA"), ("anonymous_id", "anon1", "cA"), ("anonymous_id", "anon2", "cB")],
        "id_type string, id_value string, customer_id string",
    )
    actual = customer_events(events, identity)
    expected = spark.createDataFrame(
        [
            ("cA", "Product Added", ts("2026-03-10T01:00:00")),
            ("cB", "Product Added", ts("2026-03-10T02:00:00")),
            ("cA", "Order Completed", ts("2026-03-10T04:00:00")),
        ],
        "customer_id string, event_name string, event_ts timestamp",
    )
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


# --- membership history ---------------------------------------------------------------

T1, T2, T3 = (datetime(2026, 3, d, 6, 0, tzinfo=timezone.utc) for d in (1, 2, 3))


def members(spark, pairs):
    return spark.createDataFrame(pairs, "segment string, customer_id string")


@pytest.fixture(scope="module")
def history(spark, tmp_path_factory):
    """Three runs: c2 leaves on T2 and comes back on T3; c3 joins on T2; segment b untouched on T3."""
    from delta.tables import DeltaTable

    path = str(tmp_path_factory.mktemp("membership") / "segment_membership")
    counts = [merge_membership(spark, path, members(spark, [("a", "c1"), ("a", "c2"), ("b", "c1")]),
                               ["a", "b"], T1, "r1")]
    counts.append(merge_membership(spark, path, members(spark, [("a", "c1"), ("a", "c3"), ("b", "c1")]),
                                   ["a", "b"], T2, "r2"))
    # Only segment a evaluated on T3: b's members must stay as they are.
    counts.append(merge_membership(spark, path, members(spark, [("a", "c1"), ("a", "c2"), ("a", "c3")]),
                                   ["a"], T3, "r3"))
    version = DeltaTable.forPath(spark, path).history(1).first()["version"]
    again = merge_membership(spark, path, members(spark, [("a", "c1"), ("a", "c2"), ("a", "c3")]), ["a"], T3, "r3")
    version_after = DeltaTable.forPath(spark, path).history(1).first()["version"]
    return {"path": path, "counts": counts, "again": again, "versions": (version, version_after)}


def naive(dt: datetime) -> datetime:
    return dt.replace(tzinfo=None)


def test_membership_history_enter_exit_reenter(spark, history):
    actual = spark.read.format("delta").load(history["path"])
    expected = spark.createDataFrame(
        [
            ("a", "c1", naive(T1), None, "r1"),
            ("a", "c2", naive(T1), naive(T2), "r1"),
            ("b", "c1", naive(T1), None, "r1"),
            ("a", "c3", naive(T2), None, "r2"),
            ("a", "c2", naive(T3), None, "r3"),
        ],
        MEMBERSHIP_SCHEMA,
    )
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)
    assert history["counts"] == [{"entered": 3, "exited": 0}, {"entered": 1, "exited": 1},
                                 {"entered": 1, "exited": 0}]


def test_membership_rerun_commits_nothing(history):
    assert history["again"] == {"entered": 0, "exited": 0}
    assert history["versions"][0] == history["versions"][1]


def test_current_members_and_members_at(spark, history):
    table = spark.read.format("delta").load(history["path"])
    now = current_members(table).select("segment", "customer_id")
    assert_df_equality(now, members(spark, [("a", "c1"), ("a", "c2"), ("a", "c3"), ("b", "c1")]),
                       ignore_row_order=True, ignore_nullable=True)
    at_t2 = members_at(table, datetime(2026, 3, 2, 12, 0))
    assert_df_equality(at_t2, members(spark, [("a", "c1"), ("a", "c3"), ("b", "c1")]),
                       ignore_row_order=True, ignore_nullable=True)


def test_segment_size_over_time(spark, history):
    actual = segment_size_over_time(spark.read.format("delta").load(history["path"]))
    expected = spark.createDataFrame(
        [("a", naive(T1), 2), ("a", naive(T2), 2), ("a", naive(T3), 3), ("b", naive(T1), 1)],
        "segment string, at timestamp, size long",
    )
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)
