"""Bronze-shaped rows (contract of conf/sources.yaml + lineage columns) for the silver tests."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from cdp_lib.lakehouse import Lakehouse

LINEAGE = "_ingested_at timestamp, _batch_id string, _source string, _source_file string, _rescued string"

CRM_SCHEMA = (
    "contact_id string, first_name string, last_name string, email string, phone string, birth_date string, "
    "street string, city string, postcode string, country string, loyalty_id string, email_opt_in boolean, "
    "sms_opt_in boolean, created_at timestamp, updated_at timestamp, " + LINEAGE
)

SEGMENT_SCHEMA = (
    "messageId string, type string, anonymousId string, userId string, previousId string, event string, "
    "name string, traits map<string,string>, properties map<string,string>, "
    "context struct<device:struct<id:string,type:string,model:string>,ip:string,userAgent:string,"
    "library:struct<name:string>>, timestamp timestamp, sentAt timestamp, receivedAt timestamp, " + LINEAGE
)


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def crm(cid, first, email, phone, city, country, updated, batch, ingested, birth="1990-05-17"):
    """One crm_contacts bronze row; the fields a test does not vary are fixed."""
    return (cid, first, "smith", email, phone, birth, "1 High St", city, "sw1a1aa", country, None, True, False,
            utc(2025, 1, 1), updated, ingested, batch, "crm_contacts", f"contacts_{batch}.csv", None)


def segment(mid, typ, event, traits, props, device, ts, batch, ingested, anon="a-1", user=None):
    ctx = {"device": {"id": device, "type": "ios" if device else None, "model": None}, "ip": None,
           "userAgent": None, "library": {"name": "analytics.js"}}
    return (mid, typ, anon, user, None, event, None, traits, props, ctx, ts, ts, ts, ingested, batch,
            "events", f"events_{batch}.jsonl", None)


def lakehouse_at(spark, settings, root: Path, landing: Path | None = None) -> Lakehouse:
    """A Lakehouse rooted in ``root`` (tests never share tables), reading ``landing`` if given."""
    lh = settings.lakehouse.model_copy(update={"root": str(root), **({"landing": str(landing)} if landing else {})})
    return Lakehouse(spark, settings.model_copy(update={"lakehouse": lh}))


def append_bronze(spark, lakehouse: Lakehouse, table: str, rows: list[tuple], schema: str) -> None:
    """One bronze commit (append), as bronze ingestion makes per batch."""
    spark.createDataFrame(rows, schema).write.format("delta").mode("append").save(lakehouse.path("bronze", table))
