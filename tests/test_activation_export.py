"""Activation drops to a real S3-compatible server (moto over HTTP on 127.0.0.1) and a folder.

Spark writes the part files through s3a; the tests read everything back with boto3 and
check rows, hashes, consent filtering, manifests, incremental adds/removes, re-runs and
a server stopped mid-export.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from pyspark.sql import types as T

from cdp_lib.activation.destinations import DestinationsConfig
from cdp_lib.activation.export import export_segments
from cdp_lib.activation.membership import merge_membership
from cdp_lib.errors import ExportError
from cdp_lib.lakehouse import Lakehouse
from tests.s3_fixtures import FAST_FAIL_HADOOP, moto_server  # noqa: F401  (fixture)
from tests.silver_fixtures import lakehouse_at

PROFILE = T.StructType(
    [
        T.StructField("customer_id", T.StringType(), False),
        T.StructField("first_name", T.StringType()),
        T.StructField("email", T.StringType()),
        T.StructField("phone", T.StringType()),
        T.StructField("country", T.StringType()),
        T.StructField("total_spend", T.DecimalType(12, 2)),
        T.StructField("consent_email", T.BooleanType()),
        T.StructField("consent_ads", T.BooleanType()),
    ]
)
PROFILE_V0 = [
    ("c1", "Ann", "  Ann@Example.COM ", "+44 7700 900001", "GB", Decimal("10.00"), True, True),
    ("c2", "Bob", "bob@example.com", "+447700900002", "GB", Decimal("20.00"), True, None),   # ads unknown
    ("c3", "Cy", "cy@example.com", None, "FR", Decimal("30.00"), False, True),
    ("c4", "Di", None, "+33 6 12 34 56 78", "FR", Decimal("40.00"), None, False),            # ads refused
    ("c5", "Ed", "ed@example.com", "not a phone", "DE", Decimal("50.00"), True, True),
]
T1 = datetime(2026, 3, 1, 6, 0, tzinfo=timezone.utc)
T2 = datetime(2026, 3, 2, 6, 0, tzinfo=timezone.utc)


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def seed(lh: Lakehouse, members: list[str]) -> None:
    """gold.customer_profile v0 and gold.segment_membership (segment `carts`) at T1."""
    spark = lh.spark
    spark.createDataFrame(PROFILE_V0, PROFILE).write.format("delta").save(lh.path("gold", "customer_profile"))
    current = spark.createDataFrame([("carts", c) for c in members], "segment string, customer_id string")
    merge_membership(spark, lh.path("gold", "segment_membership"), current, ["carts"], T1, "seg1")


def destinations(**overrides) -> DestinationsConfig:
    dest = {
        "name": "ads",
        "uri": "activation",
        "format": "csv",
        "mode": "full",
        "consent": "ads",
        "segments": ["carts"],
        "fields": [
            {"source": "customer_id", "name": "external_id"},
            {"source": "email", "name": "email_sha256", "pii": "sha256_email"},
            {"source": "phone", "name": "phone_sha256", "pii": "sha256_phone"},
            {"source": "first_name", "pii": "drop"},
            {"source": "country"},
        ],
    }
    dest.update(overrides)
    return DestinationsConfig.model_validate({"destinations": [dest]})


def s3_destinations(server, bucket, **overrides) -> DestinationsConfig:
    s3 = {"endpoint": server.endpoint, "path_style_access": True, "ssl_enabled": False, "region": "us-east-1",
          "connect_timeout_s": 2, "read_timeout_s": 3, "max_attempts": 1, "hadoop": FAST_FAIL_HADOOP}
    return destinations(uri=f"s3a://{bucket}/drops", s3=s3, **overrides)


def objects(client, bucket: str, prefix: str) -> dict[str, dict]:
    out = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for o in page.get("Contents", []):
            out[o["Key"]] = o
    return out


def read_drop(client, bucket: str, run_dir: str) -> tuple[dict, list[dict], dict[str, bytes]]:
    """(manifest, csv rows of every part file, raw bytes per part file) read back with boto3."""
    keys = objects(client, bucket, run_dir + "/")
    manifest = json.loads(client.get_object(Bucket=bucket, Key=f"{run_dir}/manifest.json")["Body"].read())
    parts = {k.rsplit("/", 1)[1]: client.get_object(Bucket=bucket, Key=k)["Body"].read()
             for k in keys if k.rsplit("/", 1)[1].startswith("part-")}
    rows = [r for data in parts.values() for r in csv.DictReader(io.StringIO(data.decode()))]
    return manifest, rows, parts


def test_full_csv_drop_to_s3_hashes_and_consent(spark, settings, tmp_path, moto_server):  # noqa: F811
    lh = lakehouse_at(spark, settings, tmp_path / "lh")
    seed(lh, ["c1", "c2", "c3", "c4", "c5"])
    bucket = moto_server.new_bucket()
    client = moto_server.client()
    steps = []

    def on_step(step, uri):
        steps.append((step, sorted(k.rsplit("/", 1)[1] for k in objects(client, bucket, "drops/"))))

    result = export_segments(lh, s3_destinations(moto_server, bucket), "run1", on_step=on_step)
    assert [r["status"] for r in result] == ["success"]

    run_dir = "drops/ads/carts/run1"
    manifest, rows, parts = read_drop(client, bucket, run_dir)
    # Consent: only explicit ads opt-ins (c2 unknown and c4 refused are left out).
    # Hashes: sha256 of the trimmed lower-case email and of the E.164 phone; junk phone -> empty.
    assert sorted(rows, key=lambda r: r["external_id"]) == [
        {"external_id": "c1", "email_sha256": sha("ann@example.com"), "phone_sha256": sha("+447700900001"),
         "country": "GB"},
        {"external_id": "c3", "email_sha256": sha("cy@example.com"), "phone_sha256": "", "country": "FR"},
        {"external_id": "c5", "email_sha256": sha("ed@example.com"), "phone_sha256": "", "country": "DE"},
    ]
    # _SUCCESS comes last: absent after the data and after the manifest were written.
    assert [s for s, _ in steps] == ["data_written", "manifest_written"]
    assert "_SUCCESS" not in steps[0][1] and "manifest.json" not in steps[0][1]
    assert "_SUCCESS" not in steps[1][1] and "manifest.json" in steps[1][1]
    assert set(objects(client, bucket, run_dir + "/")) == {f"{run_dir}/{n}" for n in parts} | {
        f"{run_dir}/manifest.json", f"{run_dir}/_SUCCESS"}
    # Manifest: counts, per-file checksum, schema, input versions, consent policy.
    assert manifest["segment"] == "carts" and manifest["run_id"] == "run1" and manifest["rows"] == 3
    assert {f["name"]: (f["sha256"], f["bytes"]) for f in manifest["files"]} == {
        n: (hashlib.sha256(b).hexdigest(), len(b)) for n, b in parts.items()}
    assert sum(f["rows"] for f in manifest["files"]) == 3
    assert [c["name"] for c in manifest["schema"]] == ["external_id", "email_sha256", "phone_sha256", "country"]
    assert manifest["inputs"] == {"gold.segment_membership": {"delta_version": 0},
                                  "gold.customer_profile": {"delta_version": 0}}
    assert manifest["consent"]["column"] == "consent_ads"
    assert manifest["pii"] == {"email_sha256": "sha256_email", "phone_sha256": "sha256_phone", "first_name": "drop"}

    # Re-running a completed run id rewrites nothing.
    before = {k: (o["ETag"], o["LastModified"]) for k, o in objects(client, bucket, run_dir + "/").items()}
    again = export_segments(lh, s3_destinations(moto_server, bucket), "run1")
    assert [r["status"] for r in again] == ["skipped"]
    assert {k: (o["ETag"], o["LastModified"]) for k, o in objects(client, bucket, run_dir + "/").items()} == before
    log = lh.read("ops", "activation_log").select("run_id", "status", "rows").collect()
    assert [tuple(r) for r in log] == [("run1", "success", 3)]


def test_incremental_adds_and_removes_since_last_successful_drop(spark, settings, tmp_path, moto_server):  # noqa: F811
    lh = lakehouse_at(spark, settings, tmp_path / "lh")
    seed(lh, ["c1", "c2", "c3"])
    bucket = moto_server.new_bucket()
    client = moto_server.client()
    config = s3_destinations(moto_server, bucket, mode="incremental", max_rows_per_file=1)

    export_segments(lh, config, "run1")
    _, rows1, parts1 = read_drop(client, bucket, "drops/ads/carts/run1")
    # First drop: everyone in the audience is an add (c2 has no ads consent). One row per file.
    assert sorted((r["action"], r["external_id"]) for r in rows1) == [("add", "c1"), ("add", "c3")]
    assert len(parts1) == 2

    # Changes: c3 leaves the segment, c5 joins; c1 withdraws ads consent; c2 opts in.
    now = spark.createDataFrame([("carts", c) for c in ("c1", "c2", "c5")], "segment string, customer_id string")
    merge_membership(spark, lh.path("gold", "segment_membership"), now, ["carts"], T2, "seg2")
    v1 = list(PROFILE_V0)
    v1[0] = (*v1[0][:7], False)
    v1[1] = (*v1[1][:7], True)
    spark.createDataFrame(v1, PROFILE).write.format("delta").mode("overwrite").save(lh.path("gold", "customer_profile"))

    export_segments(lh, config, "run2")
    manifest, rows2, _ = read_drop(client, bucket, "drops/ads/carts/run2")
    assert sorted((r["action"], r["external_id"], r["email_sha256"]) for r in rows2) == [
        ("add", "c2", sha("bob@example.com")),
        ("add", "c5", sha("ed@example.com")),
        ("remove", "c1", sha("ann@example.com")),   # consent withdrawn
        ("remove", "c3", sha("cy@example.com")),    # left the segment
    ]
    assert manifest["counts"] == {"add": 2, "remove": 2}
    assert manifest["previous_run_id"] == "run1"
    assert manifest["inputs"] == {"gold.segment_membership": {"delta_version": 1},
                                  "gold.customer_profile": {"delta_version": 1}}

    # Nothing changed since run2: the next drop is empty.
    export_segments(lh, config, "run3")
    manifest3, rows3, _ = read_drop(client, bucket, "drops/ads/carts/run3")
    assert rows3 == [] and manifest3["rows"] == 0 and manifest3["previous_run_id"] == "run2"
    assert manifest3["full_refresh"] is False

    # run3's gold versions expire (exports failing for longer than the file retention; 0 hours here):
    # the difference is unknown, so the drop holds the whole audience and says it replaces the last
    for table in ("segment_membership", "customer_profile"):
        lh.set_properties("gold", table, {"delta.deletedFileRetentionDuration": "interval 0 hours"})
    export_segments(lh, config, "run4")
    manifest4, rows4, _ = read_drop(client, bucket, "drops/ads/carts/run4")
    assert manifest4["full_refresh"] is True and manifest4["previous_run_id"] == "run3"
    assert sorted((r["action"], r["external_id"]) for r in rows4) == [("add", "c2"), ("add", "c5")]


def test_server_stopped_mid_export_leaves_no_success_and_next_run_completes(
    spark, settings, tmp_path, moto_server  # noqa: F811
):
    lh = lakehouse_at(spark, settings, tmp_path / "lh")
    seed(lh, ["c1", "c3"])
    bucket = moto_server.new_bucket()
    client = moto_server.client()
    config = s3_destinations(moto_server, bucket, mode="incremental")

    def stop_server(step, uri):
        if step == "data_written":
            moto_server.pause()

    try:
        with pytest.raises(ExportError, match="1 drop\\(s\\) failed \\(ads/carts\\)"):
            export_segments(lh, config, "run1", on_step=stop_server)
    finally:
        moto_server.resume()
    keys = {k.rsplit("/", 1)[1] for k in objects(client, bucket, "drops/ads/carts/run1/")}
    assert any(k.startswith("part-") for k in keys)  # the data files made it ...
    assert "_SUCCESS" not in keys and "manifest.json" not in keys  # ... but the drop is not complete

    export_segments(lh, config, "run2")
    assert objects(client, bucket, "drops/ads/carts/run1/") == {}  # partial attempt cleaned up
    manifest, rows, _ = read_drop(client, bucket, "drops/ads/carts/run2")
    assert "drops/ads/carts/run2/_SUCCESS" in objects(client, bucket, "drops/ads/carts/run2/")
    # No successful drop before: the failed one's content is all in this one.
    assert sorted((r["action"], r["external_id"]) for r in rows) == [("add", "c1"), ("add", "c3")]
    assert manifest["previous_run_id"] is None
    log = sorted(tuple(r) for r in lh.read("ops", "activation_log").select("run_id", "status").collect())
    assert log == [("run1", "failed"), ("run2", "success")]


def test_server_down_before_export_fails_fast_without_success(spark, settings, tmp_path, moto_server):  # noqa: F811
    lh = lakehouse_at(spark, settings, tmp_path / "lh")
    seed(lh, ["c1"])
    bucket = moto_server.new_bucket()
    config = s3_destinations(moto_server, bucket)
    with moto_server.paused():
        with pytest.raises(ExportError):
            export_segments(lh, config, "run1")
    assert objects(moto_server.client(), bucket, "drops/ads/carts/run1/_SUCCESS") == {}
    export_segments(lh, config, "run1")  # same run id redone after the failure
    assert "drops/ads/carts/run1/_SUCCESS" in objects(moto_server.client(), bucket, "drops/ads/carts/run1/")


def test_local_parquet_and_jsonl_drops(spark, settings, tmp_path):
    lh = lakehouse_at(spark, settings, tmp_path / "lh")
    seed(lh, ["c1", "c2", "c3", "c4", "c5"])
    out = tmp_path / "out"
    config = DestinationsConfig.model_validate({"destinations": [
        {"name": "wh", "uri": str(out), "format": "parquet", "consent": "none", "segments": ["carts"],
         "partitions": 2, "fields": [{"source": "customer_id"}, {"source": "total_spend", "name": "spend"}]},
        {"name": "mail", "uri": str(out), "format": "jsonl", "consent": "email", "segments": ["carts"],
         "fields": [{"source": "customer_id"}, {"source": "email", "pii": "plain"}]},
    ]})
    export_segments(lh, config, "r1")

    wh = out / "wh" / "carts" / "r1"
    manifest = json.loads((wh / "manifest.json").read_text())
    assert (wh / "_SUCCESS").exists() and manifest["rows"] == 5 and len(manifest["files"]) == 2
    got = spark.read.parquet(str(wh / "part-*")).collect()  # manifest.json sits beside the parts
    assert sorted((r["customer_id"], r["spend"]) for r in got) == [
        ("c1", Decimal("10.00")), ("c2", Decimal("20.00")), ("c3", Decimal("30.00")),
        ("c4", Decimal("40.00")), ("c5", Decimal("50.00"))]
    for f in manifest["files"]:
        assert hashlib.sha256((wh / f["name"]).read_bytes()).hexdigest() == f["sha256"]

    mail = out / "mail" / "carts" / "r1"
    lines = [json.loads(line) for p in sorted(mail.glob("part-*")) for line in p.read_text().splitlines()]
    # consent_email: c1, c2, c5 true; c3 false and c4 unknown are excluded.
    assert sorted((d["customer_id"], d["email"]) for d in lines) == [
        ("c1", "  Ann@Example.COM "), ("c2", "bob@example.com"), ("c5", "ed@example.com")]
