"""`cdp segments` then `cdp export` on the shipped conf/, in the test session, to a local folder."""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from cdp_lib.activation.segments import PROFILE_CONTRACT
from cdp_lib.cli import main
from tests.silver_fixtures import lakehouse_at

PROJECT = Path(__file__).resolve().parent.parent


def profile_row(cid, email, orders, spend, days, consent):
    return (cid, "F", "L", email, "+447700900123", "N1", "GB", "London", orders, Decimal(spend),
            datetime(2026, 1, 1), days, "555", None, consent, None, consent)


def test_cdp_segments_and_export_on_shipped_config(spark, settings, tmp_path, monkeypatch, capsys):
    root, out = tmp_path / "lh", tmp_path / "drops"
    conf = tmp_path / "conf"
    shutil.copytree(PROJECT / "conf", conf)
    monkeypatch.setenv("CDP_LAKEHOUSE", str(root))
    monkeypatch.setenv("CDP_ACTIVATION_URI", str(out))
    lh = lakehouse_at(spark, settings, root)
    rows = [
        profile_row("c1", "a@x.com", 4, "900.00", 10, True),    # high_value; cart
        profile_row("c2", "b@x.com", 0, "0.00", None, True),    # newsletter prospect
        profile_row("c3", "c@x.com", 2, "50.00", 120, None),    # lapsed (no email consent)
    ]
    spark.createDataFrame(rows, PROFILE_CONTRACT).write.format("delta").save(lh.path("gold", "customer_profile"))
    spark.createDataFrame([("user_id", "U1", "c1")], "id_type string, id_value string, customer_id string") \
        .write.format("delta").save(lh.path("gold", "identity_map"))
    spark.createDataFrame(
        [("a1", "U1", "track", "Product Added", datetime(2026, 3, 10, 9, 0))],
        "anonymous_id string, user_id string, event_type string, event_name string, event_ts timestamp",
    ).write.format("delta").save(lh.path("silver", "events"))

    shuffle = spark.conf.get("spark.sql.shuffle.partitions")
    try:
        assert main(["segments", "--conf-dir", str(conf), "--as-of", "2026-03-10T12:00:00Z", "--run-id", "s1"]) == 0
        seg = json.loads(capsys.readouterr().out)
        assert main(["export", "--conf-dir", str(conf), "--run-id", "e1"]) == 0
        exp = json.loads(capsys.readouterr().out)
    finally:
        spark.conf.set("spark.sql.shuffle.partitions", shuffle)  # the CLI applies conf/env/local.yaml's
    assert seg["sizes"] == {"cart_abandoners": 1, "high_value": 1, "lapsed_customers": 1, "newsletter_prospects": 1}
    got = {(d["destination"], d["segment"]): (d["status"], d.get("rows")) for d in exp["drops"]}
    assert got == {
        ("meta_ads", "cart_abandoners"): ("success", 1),
        ("meta_ads", "high_value"): ("success", 1),
        ("email_tool", "cart_abandoners"): ("success", 1),
        ("email_tool", "lapsed_customers"): ("success", 0),   # c3 has not opted in to email
        ("email_tool", "newsletter_prospects"): ("success", 1),
        ("warehouse", "high_value"): ("success", 1),
    }
    assert (out / "meta_ads" / "cart_abandoners" / "e1" / "_SUCCESS").exists()
