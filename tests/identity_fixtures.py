"""Tiny inline inputs for the identity tests (a household, junk values, a shared email, events)."""

from __future__ import annotations

from datetime import date, datetime

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from cdp_lib.identity.config import IdentityConfig

CONTACTS_SCHEMA = (
    "crm_id string, email string, phone string, birth_date date, first_name string, last_name string, "
    "street string, postcode string, loyalty_id string, updated_at timestamp, _record_key string"
)
EVENTS_SCHEMA = (
    "event_type string, user_id string, anonymous_id string, previous_id string, event_ts timestamp, "
    "_record_key string"
)
T0 = datetime(2026, 3, 1, 9, 0)
SHARED_PHONE = "+447700900001"


def contacts_rows() -> list[tuple]:
    def c(crm, email, phone, bd, first, last, loyalty=None, day=1):
        return (crm, email, phone, bd, first, last, "1 High St" if last == "Smith" else None,
                "LS1 1AA" if last == "Smith" else None, loyalty, T0.replace(day=day), f"{crm}|2026-03-0{day}")

    return [
        # Ann and Bob: one household, one phone, two birth dates -> must stay two customers.
        c("C1", "a@x.com", SHARED_PHONE, date(1980, 1, 1), "Ann", "Smith", "L1"),
        c("C2", "b@x.com", SHARED_PHONE, date(1982, 2, 2), "Bob", "Smith"),
        # one email on four contacts: junk under max_links 3
        *[c(f"C{i}", "shared@x.com", None, None, None, None) for i in (3, 4, 5, 6)],
        # blocklisted value and regex
        c("C7", "test@test.com", "+440000000000", date(1990, 3, 3), "Tess", "Test"),
        # not normalised upstream: trimmed and lower-cased here
        c("C8", " D@X.com ", None, None, "Dan", "Dee"),
        (None, None, None, None, None, None, None, None, None, T0, "empty|2026-03-01"),
    ]


def events_rows() -> list[tuple]:
    return [
        ("identify", "C1", "anon1", None, T0, "m1"),
        ("track", None, "anon9", None, T0, "m2"),  # anonymous only: a vertex, no edge
        ("alias", "C8", None, "anon2", T0, "m3"),
    ]


def identity_config(**overrides) -> IdentityConfig:
    data = {
        "inputs": [
            {
                "name": "contacts", "table": "silver.contacts", "time": "updated_at",
                "identifiers": {"crm_id": "crm_id", "email": "email", "phone": "phone", "loyalty_id": "loyalty_id"},
                "attributes": {"first_name": "first_name", "last_name": "last_name", "birth_date": "birth_date",
                               "address": "street", "postcode": "postcode", "phone": "phone"},
                "links": [{"rule": "crm_contact", "priority": 100,
                           "pairs": [["crm_id", "email"], ["crm_id", "phone"], ["crm_id", "loyalty_id"]]}],
            },
            {
                "name": "events", "table": "silver.events", "time": "event_ts",
                "where": "event_type <> 'alias'",
                "identifiers": {"user_id": "user_id", "crm_id": "user_id", "anonymous_id": "anonymous_id"},
                "links": [{"rule": "user_id_is_crm_id", "priority": 100, "pairs": [["user_id", "crm_id"]]},
                          {"rule": "logged_in_event", "priority": 80, "pairs": [["user_id", "anonymous_id"]]}],
            },
            {
                "name": "aliases", "table": "silver.events", "time": "event_ts", "where": "event_type = 'alias'",
                "identifiers": {"anonymous_id": "previous_id", "user_id": "user_id", "crm_id": "user_id"},
                "links": [{"rule": "alias", "priority": 80, "pairs": [["anonymous_id", "user_id"]]},
                          {"rule": "user_id_is_crm_id", "priority": 100, "pairs": [["user_id", "crm_id"]]}],
            },
        ],
        "blocklist": {"values": {"email": ["test@test.com"], "*": ["unknown"]},
                      "patterns": {"phone": [r"^\+?\d{0,3}0{7,}$"]}},
        "shared_identifier": {"strong_types": ["crm_id"], "max_links": 3},
        "max_per_cluster": {"birth_date": 1},
        "giant_component": {"max_size": 50},
    }
    data.update(overrides)
    return IdentityConfig.model_validate(data)


def tables(spark: SparkSession, contacts: list[tuple] | None = None, events: list[tuple] | None = None):
    c = spark.createDataFrame(contacts if contacts is not None else contacts_rows(), CONTACTS_SCHEMA)
    e = spark.createDataFrame(events if events is not None else events_rows(), EVENTS_SCHEMA)
    return {"contacts": c, "events": e, "aliases": e}


def clusters_by_representative(identity_map: DataFrame) -> DataFrame:
    """(id_type, id_value, rep): rep = the smallest 'type:value' of the cluster, independent of customer ids."""
    key = F.concat_ws(":", "id_type", "id_value")
    reps = identity_map.groupBy("customer_id").agg(F.min(key).alias("rep"))
    return identity_map.join(reps, "customer_id").select("id_type", "id_value", "rep")
RUN_AT_BYOD = datetime(2026, 3, 5, 0, 0)
