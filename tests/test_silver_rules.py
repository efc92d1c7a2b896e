"""Expectation actions (warn, fail, referential) and config errors, on a small in-test entity."""

from __future__ import annotations

import json

import pytest
from chispa import assert_df_equality
from pyspark.errors import AnalysisException
from pyspark.sql import functions as F

from cdp_lib.config import parse_model
from cdp_lib.errors import ConfigError, DataQualityError
from cdp_lib.session import register_functions
from cdp_lib.silver import normalize as N
from cdp_lib.silver.build import build_entity, build_silver
from cdp_lib.silver.spec import SilverConfig, load_silver_config
from tests.silver_fixtures import LINEAGE, append_bronze, lakehouse_at, utc

POS_SCHEMA = (
    "order_id string, line_no int, store_id string, loyalty_id string, email string, order_ts timestamp, "
    "currency string, product_id string, quantity int, unit_price decimal(12,2), line_amount decimal(12,2), "
    + LINEAGE
)


def _cfg(column_expr: str = "product_id", product_norm: str = "id") -> SilverConfig:
    data = {
        "entities": {
            "lines": {
                "table": "lines",
                "key": ["order_id", "line_no"],
                "keep": "latest",
                "order_by": "updated_at",
                "columns": {"order_id": "id", "line_no": "int", "product_id": product_norm, "quantity": "int",
                            "updated_at": "timestamp"},
                "sources": [{
                    "bronze": "pos_orders",
                    "record_key": ["order_id", "line_no"],
                    "columns": {"order_id": "order_id", "line_no": "line_no", "product_id": column_expr,
                                "quantity": "quantity", "updated_at": "order_ts"},
                }],
                "expectations": [
                    {"name": "product_known", "type": "referential", "column": "product_id",
                     "ref_table": "bronze.ref_products", "ref_column": "product_id", "action": "warn"},
                    {"name": "quantity_positive", "type": "range", "column": "quantity", "min": 1, "action": "fail"},
                ],
            }
        }
    }
    return parse_model(SilverConfig, data, "test")


def _line(order_id, line_no, product, qty, batch):
    return (order_id, line_no, "S1", None, None, utc(2026, 3, 1, 9), "GBP", product, qty, None, None,
            utc(2026, 3, 1, 12), batch, "pos_orders", "pos.csv", None)


def test_warn_records_and_fail_raises_before_writing(spark, settings, tmp_path_factory):
    lh = lakehouse_at(spark, settings, tmp_path_factory.mktemp("silver_rules"))
    spark.createDataFrame([("P001",), ("P002",)], "product_id string").write.format("delta").save(
        lh.path("bronze", "ref_products"))
    append_bronze(spark, lh, "pos_orders", [_line("O1", 1, "P001", 1, "b1"), _line("O1", 2, "P999", 2, "b1")],
                  POS_SCHEMA)
    cfg = _cfg()
    first = build_entity(spark, lh, cfg, "lines", "r1")
    assert (first["rows_in"], first["rows_out"], first["rows_quarantined"]) == (2, 2, 0)  # warn keeps rows
    version = lh.version("silver", "lines")

    append_bronze(spark, lh, "pos_orders", [_line("O2", 1, "P002", 0, "b2")], POS_SCHEMA)
    with pytest.raises(DataQualityError, match="quantity_positive"):
        build_entity(spark, lh, cfg, "lines", "r2")
    assert lh.version("silver", "lines") == version  # nothing written

    actual = lh.read("ops", "dq_results").where("rule_type <> 'normalize_int' AND rule_type <> 'normalize_timestamp'")
    expected = spark.createDataFrame(
        [("r1", "product_known", "warn", 1, 2), ("r1", "quantity_positive", "fail", 0, 2),
         ("r2", "product_known", "warn", 0, 1), ("r2", "quantity_positive", "fail", 1, 1)],
        "run_id string, rule string, action string, failed_rows long, total_rows long",
    )
    assert_df_equality(actual.select(*expected.columns), expected, ignore_row_order=True, ignore_nullable=True)
    status = [r.status for r in lh.read("ops", "run_log").where("run_id = 'r2'").collect()]
    assert status == ["failed"]


def test_a_build_registers_the_java_normalisers_in_a_session_without_them(spark, settings, tmp_path_factory):
    # A session not made by build_session (a user's own) lacks cdp_clean_string until a build runs.
    lh = lakehouse_at(spark, settings, tmp_path_factory.mktemp("silver_register"))
    refs = spark.createDataFrame([("P001",)], "product_id string")
    refs.write.format("delta").save(lh.path("bronze", "ref_products"))
    append_bronze(spark, lh, "pos_orders", [_line("O1", 1, " P001\u00a0", 1, "b1")], POS_SCHEMA)
    spark.sql("DROP TEMPORARY FUNCTION cdp_clean_string")
    try:
        with pytest.raises(AnalysisException, match="cdp_clean_string"):
            spark.range(1).select(N.clean_string(F.lit("x"))).collect()
        build_entity(spark, lh, _cfg(product_norm="text"), "lines", "r1")
        assert [r.product_id for r in lh.read("silver", "lines").collect()] == ["P001"]
    finally:
        register_functions(spark)


def test_bad_expression_is_a_config_error_naming_the_key(spark, settings, tmp_path_factory):
    lh = lakehouse_at(spark, settings, tmp_path_factory.mktemp("silver_badexpr"))
    append_bronze(spark, lh, "pos_orders", [_line("O1", 1, "P001", 1, "b1")], POS_SCHEMA)
    with pytest.raises(ConfigError, match=r"entities\.lines\.sources\.0\.columns\.product_id"):
        build_entity(spark, lh, _cfg("no_such_column"), "lines", "r1")


def test_config_validation(tmp_path):
    assert "contacts" in load_silver_config().entities  # the shipped file is valid
    (tmp_path / "silver.yaml").write_text(
        "entities:\n  x:\n    table: x\n    key: [id]\n    keep: latest\n    columns: {id: id}\n"
        "    sources: [{bronze: b, record_key: [id], columns: {id: id}}]\n"
    )
    with pytest.raises(ConfigError, match="order_by"):
        load_silver_config(tmp_path)
    (tmp_path / "silver.yaml").write_text("entitis: {}\n")
    with pytest.raises(ConfigError, match="unknown key"):
        load_silver_config(tmp_path)
    one = ("    table: t\n    key: [id]\n    keep: first\n    columns: {id: id}\n"
           "    sources: [{bronze: b, record_key: [id], columns: {id: id}}]\n")
    (tmp_path / "silver.yaml").write_text(f"entities:\n  x:\n{one}  y:\n{one}")
    with pytest.raises(ConfigError, match="both write silver.t"):  # built at once, they would race
        load_silver_config(tmp_path)


def test_entities_built_at_once_keep_what_succeeded_and_raise_the_failure(spark, settings, tmp_path_factory):
    """Two entities in two lanes; one breaks a fail rule. The other one finishes and stays consumed,
    both rule counts are kept, and both run-log rows land in one commit."""
    lh = lakehouse_at(spark, settings, tmp_path_factory.mktemp("silver_lanes"))
    ref = lh.path("bronze", "ref_products")
    spark.createDataFrame([("P001",)], "product_id string").write.format("delta").save(ref)
    append_bronze(spark, lh, "pos_orders", [_line("O1", 1, "P001", 0, "b1"), _line("O1", 2, "P001", 2, "b1")],
                  POS_SCHEMA)
    data = _cfg().model_dump()
    ok = json.loads(json.dumps(data["entities"]["lines"]))
    ok.update(table="lines_ok", expectations=[])
    data["entities"]["lines_ok"] = ok
    cfg = parse_model(SilverConfig, data, "test")
    with pytest.raises(DataQualityError, match="quantity_positive"):
        build_silver(spark, lh, cfg, run_id="r1", parallel=2)
    assert not lh.exists("silver", "lines")
    assert lh.read("silver", "lines_ok").count() == 2
    marks = {(r.entity, r.bronze_table, r.bronze_version) for r in lh.read("ops", "silver_watermarks").collect()}
    assert marks == {("lines_ok", "pos_orders", lh.version("bronze", "pos_orders"))}
    rules = {(r.entity, r.rule) for r in lh.read("ops", "dq_results").select("entity", "rule").collect()}
    assert ("lines", "quantity_positive") in rules and any(e == "lines_ok" for e, _ in rules)
    runs = {r.source: r for r in lh.read("ops", "run_log").collect()}
    assert {s: r.status for s, r in runs.items()} == {"lines": "failed", "lines_ok": "success"}
    assert lh.version("ops", "run_log") == 0  # one commit for both rows
    a, b = runs["lines"], runs["lines_ok"]
    assert a.started_at < b.ended_at and b.started_at < a.ended_at  # built at once, not one after the other
